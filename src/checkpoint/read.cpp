// Reading checkpoints (docs/checkpoints.md): every object header is checked before HDF5
// loads it (hdf5_workarounds.hpp), every value and the structure against their checksums,
// and any damage is a DataError naming the file and the entry.
#include "layercache/checkpoint.hpp"

#include <fcntl.h>
#include <hdf5.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <optional>
#include <set>

#include "format.hpp"
#include "hdf5_session.hpp"
#include "hdf5_workarounds.hpp"

namespace layercache {
namespace {

// What this file shares with the writer: format.hpp, hdf5_session.hpp.
using namespace detail;

[[noreturn]] void corrupt(const std::string& file, const std::string& what) {
  throw DataError("corrupt checkpoint: " + what + hdf5_reason(), file);
}

// The file open for reading, as a descriptor of layercache's own: HeaderCheck reads object
// headers through it, before HDF5 opens the file itself (open_hdf5).
class Descriptor {
 public:
  explicit Descriptor(const std::string& file) {
    struct stat info {};
    if (::stat(file.c_str(), &info) != 0)
      throw IoError("cannot open checkpoint: " + std::string(std::strerror(errno)), file);
    if (S_ISDIR(info.st_mode)) throw IoError("cannot open checkpoint: it is a directory", file);
    fd_ = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0)
      throw IoError("cannot read checkpoint: " + std::string(std::strerror(errno)), file);
  }
  ~Descriptor() { ::close(fd_); }
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;
  int get() const noexcept { return fd_; }

 private:
  int fd_ = -1;
};

Handle open_hdf5(const std::string& file) {
  Handle access(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  if (!access.valid() || H5Pset_fapl_sec2(access) < 0)
    throw DataError("cannot set up HDF5 property lists" + hdf5_reason(), file);
  Handle h5(H5Fopen(file.c_str(), H5F_ACC_RDONLY, access), H5Fclose);
  if (!h5.valid())
    throw DataError("not a readable HDF5 file (truncated, corrupt or not HDF5)" + hdf5_reason(),
                    file);
  return h5;
}

// An open attribute with its type and dataspace, checked to hold one value of class `kind`
// (`described` names it in the error, "a single string"); nothing when the object has no
// attribute of that name.
struct Attribute {
  Handle attribute, type;
};
std::optional<Attribute> open_attribute(hid_t object, const char* name, H5T_class_t kind,
                                        const char* described, const std::string& file) {
  const std::string what = std::string("attribute '") + name + "'";
  const htri_t exists = H5Aexists(object, name);
  if (exists < 0) corrupt(file, what);
  if (exists == 0) return std::nullopt;
  Handle attribute(H5Aopen(object, name, H5P_DEFAULT), H5Aclose);
  Handle type(attribute.valid() ? H5Aget_type(attribute) : H5I_INVALID_HID, H5Tclose);
  Handle space(attribute.valid() ? H5Aget_space(attribute) : H5I_INVALID_HID, H5Sclose);
  if (!type.valid() || !space.valid()) corrupt(file, what);
  if (H5Tget_class(type) != kind || H5Sget_simple_extent_npoints(space) != 1)
    throw DataError(what + " is not " + described, file);
  return Attribute{std::move(attribute), std::move(type)};
}

// The attribute as text, or nothing when the object has no attribute of that name. A
// variable-length string is read only after `headers` checked what HDF5 will read for it
// (the object's header is at `address`): without the check it is refused.
std::optional<std::string> read_string_attribute(hid_t object, const char* name,
                                                 const std::string& file,
                                                 const HeaderCheck* headers,
                                                 std::uint64_t address) {
  std::optional<Attribute> found = open_attribute(object, name, H5T_STRING, "a single string", file);
  if (!found) return std::nullopt;
  const std::string what = std::string("attribute '") + name + "'";
  const Handle& attribute = found->attribute;
  const Handle& type = found->type;
  // The memory type keeps the stored character set: HDF5 converts neither way between them.
  const htri_t variable = H5Tis_variable_str(type);
  const H5T_cset_t cset = H5Tget_cset(type);
  Handle memory(H5Tcopy(H5T_C_S1), H5Tclose);
  if (variable < 0 || cset < 0 || !memory.valid() || H5Tset_cset(memory, cset) < 0)
    corrupt(file, what);
  if (variable) {
    if (!headers)
      throw DataError(what + " is a variable-length string in a file whose layout this library "
                             "cannot check; layercache writes fixed-length strings",
                      file);
    headers->variable_string(address, name, what);
    char* text = nullptr;
    if (H5Tset_size(memory, H5T_VARIABLE) < 0 || H5Aread(attribute, memory, &text) < 0)
      corrupt(file, what);
    std::string value = text ? text : "";
    H5free_memory(text);
    return value;
  }
  // Fixed length (e.g. numpy bytes from h5py): one more byte for the terminating NUL.
  const std::size_t size = H5Tget_size(type) + 1;
  std::string value(size, '\0');
  if (size == 1 || H5Tset_size(memory, size) < 0 || H5Aread(attribute, memory, value.data()) < 0)
    corrupt(file, what);
  value.resize(std::strlen(value.c_str()));
  return value;
}

// The attribute as an integer, or nothing when the object has no attribute of that name.
std::optional<std::int64_t> read_int_attribute(hid_t object, const char* name,
                                               const std::string& file) {
  std::optional<Attribute> found =
      open_attribute(object, name, H5T_INTEGER, "a single integer", file);
  if (!found) return std::nullopt;
  std::int64_t value = 0;
  if (H5Aread(found->attribute, H5T_NATIVE_INT64, &value) < 0)
    corrupt(file, std::string("attribute '") + name + "'");
  return value;
}

// Checks that the root says "layercache checkpoint, a version we read, of element type T".
template <class T>
CheckpointInfo read_root(hid_t h5, const std::string& file, const HeaderCheck* headers) {
  // The root's strings: its header is the one HeaderCheck found first.
  const auto string = [&](const char* name) {
    return read_string_attribute(h5, name, file, headers, headers ? headers->root() : 0);
  };
  const auto format = string("format");
  if (!format)
    throw DataError("not a layercache checkpoint: the root group has no 'format' attribute",
                    file);
  if (*format != format_name)
    throw DataError("not a layercache checkpoint: format is '" + *format + "', expected '" +
                        format_name + "'",
                    file);
  const auto version = read_int_attribute(h5, "format_version", file);
  if (!version) throw DataError("the root group has no 'format_version' attribute", file);
  if (*version < 1 || *version > checkpoint_format_version)
    throw DataError("format version " + std::to_string(*version) +
                        " is not one this library reads (1 to " +
                        std::to_string(checkpoint_format_version) + ")",
                    file);
  const auto layout = string("layout");
  if (layout != std::optional<std::string>(layout_name))
    throw DataError("layout is '" + layout.value_or("") + "', expected '" + layout_name + "'",
                    file);
  const auto element = string("element_type");
  if (element != std::optional<std::string>("float32") &&
      element != std::optional<std::string>("float64"))
    throw DataError("element_type is '" + element.value_or("") +
                        "', expected 'float32' or 'float64'",
                    file);
  if (*element != Element<T>::name)
    throw ConfigError("the checkpoint holds " + *element + " tensors, not " + Element<T>::name +
                          "; load it with its own element type and convert<>() the trees if "
                          "a conversion is wanted",
                      file);
  CheckpointInfo info;
  info.epoch = read_int_attribute(h5, "epoch", file).value_or(0);
  info.step = read_int_attribute(h5, "step", file).value_or(0);
  info.metadata = string("metadata").value_or("");
  return info;
}

// Names of a group's links, in creation order when the group tracks it (ours always do),
// by name otherwise (a file written by another tool). HDF5 is asked for its native order,
// and the names are sorted here: for any other order libhdf5 1.10 first builds a table of the
// links, and when a link in a group's dense storage (a fractal heap, for groups of more than
// 8 links) cannot be read it frees the table's unfilled entries: garbage pointers, a crash.
std::vector<std::string> link_names(hid_t group, const std::string& path, const std::string& file) {
  const std::string what = "group " + in_quotes(path.empty() ? "/" : path);
  H5G_info_t info;
  Handle plist(H5Gget_create_plist(group), H5Pclose);
  unsigned order = 0;
  if (H5Gget_info(group, &info) < 0 || !plist.valid() ||
      H5Pget_link_creation_order(plist, &order) < 0)
    corrupt(file, what);
  struct Link {
    std::int64_t creation_order;  // -1 when HDF5 has none for it
    std::string name;
  };
  std::vector<Link> links;
  hsize_t next = 0;
  if (H5Literate(
          group, H5_INDEX_NAME, H5_ITER_NATIVE, &next,
          [](hid_t, const char* name, const H5L_info_t* link, void* out) -> herr_t {
            static_cast<std::vector<Link>*>(out)->push_back(
                {link->corder_valid ? link->corder : -1, name});
            return 0;
          },
          &links) < 0 ||
      links.size() != info.nlinks)
    corrupt(file, what);
  const bool tracked = (order & H5P_CRT_ORDER_TRACKED) != 0;
  if (tracked && std::any_of(links.begin(), links.end(),
                             [](const Link& link) { return link.creation_order < 0; }))
    corrupt(file, what + ": a link without its creation order");
  std::sort(links.begin(), links.end(), [&](const Link& a, const Link& b) {
    return tracked && a.creation_order != b.creation_order ? a.creation_order < b.creation_order
                                                          : a.name < b.name;
  });
  std::vector<std::string> names;
  names.reserve(links.size());
  for (Link& link : links) names.push_back(std::move(link.name));
  return names;
}

// Checks a dataset's values (as stored: row-major) against its `crc32` attribute, if any.
template <class T>
void verify_values(hid_t set, const T* data, std::size_t n, const std::string& path,
                   const std::string& file) {
  const auto stored = read_int_attribute(set, checksum_name, file);
  if (stored && *stored != values_checksum(data, n))
    throw DataError("corrupt checkpoint: the values of dataset " + in_quotes(path) +
                        " do not match their checksum",
                    file);
}

// What one load carries through the file: the file's name and size, the structure checksum,
// the object-header check, every object reached so far and the bytes the datasets claim.
struct Walk {
  explicit Walk(const std::string& file_name) : file(file_name) {}
  const std::string& file;
  hsize_t file_size = 0;
  HeaderCheck* headers = nullptr;
  StructureChecksum structure;
  std::set<haddr_t> reached;   // object header addresses
  long double claimed = 0;     // bytes, filtered datasets counted at 1/max_compression
};

// The dataset's values; with `values` false only its shape (an empty matrix of that shape
// is not allocated: the result is then (0 × 0)), for the structure checksum.
template <class T>
arma::Mat<T> read_dataset(hid_t set, const std::string& path, Walk& walk, bool values) {
  const std::string& file = walk.file;
  const std::string what = "dataset " + in_quotes(path);
  Handle type(H5Dget_type(set), H5Tclose);
  Handle space(H5Dget_space(set), H5Sclose);
  Handle plist(H5Dget_create_plist(set), H5Pclose);
  if (!type.valid() || !space.valid() || !plist.valid()) corrupt(file, what);
  if (H5Tget_class(type) != H5T_FLOAT || H5Tget_size(type) != sizeof(T))
    throw DataError(what + " does not hold " + Element<T>::name +
                        " values like the file's element_type says",
                    file);
  // Ours are always 2-D; a 1-D dataset (a numpy vector written by another tool) is a column.
  const int rank = H5Sget_simple_extent_ndims(space);
  if (rank != 1 && rank != 2)
    throw DataError(what + " has " + std::to_string(rank) +
                        " dimensions, expected 2 (n_rows, n_cols)",
                    file);
  hsize_t dims[2] = {0, 1};
  if (H5Sget_simple_extent_dims(space, dims, nullptr) < 0) corrupt(file, what);
  const hsize_t rows = dims[0], cols = dims[1];
  const hsize_t limit = std::numeric_limits<arma::uword>::max() / sizeof(T);
  // The datasets together cannot hold more bytes than the file (compressed ones at most
  // max_compression times more): bigger dims are corruption and must not turn into huge
  // allocations, however many datasets claim them.
  const int filters = H5Pget_nfilters(plist);
  if (filters < 0) corrupt(file, what);
  if (cols != 0 && rows > limit / cols) walk.claimed = std::numeric_limits<long double>::max();
  else walk.claimed += static_cast<long double>(rows * cols * sizeof(T)) /
                       (filters == 0 ? 1 : max_compression);
  if (walk.claimed > static_cast<long double>(walk.file_size))
    throw DataError(what + " claims " + std::to_string(rows) + " × " + std::to_string(cols) +
                        " values, more than the file holds",
                    file);
  walk.structure.dataset(path, rows, cols);
  if (!values) return arma::Mat<T>();
  // An empty tensor (a frozen leaf's grads, say) reads nothing; Armadillo's transpose of a
  // (k × 0) matrix would also form a reference to its null memory.
  if (rows == 0 || cols == 0) {
    verify_values<T>(set, nullptr, 0, path, file);
    return arma::Mat<T>(rows, cols);
  }
  const bool vector = rows == 1 || cols == 1;
  arma::Mat<T> row_major(vector ? rows : cols, vector ? cols : rows);  // (n_cols × n_rows)
  if (H5Dread(set, Element<T>::memory_type(), H5S_ALL, H5S_ALL, H5P_DEFAULT,
              row_major.memptr()) < 0)
    corrupt(file, what);
  verify_values(set, row_major.memptr(), row_major.n_elem, path, file);
  return vector ? row_major : arma::Mat<T>(row_major.t());
}

// The tree at `path`; with `values` false, its structure only (see read_dataset). An object
// reached a second time (a hard link to a group or dataset already read: a cycle, or a
// shared object that would be read once per path to it) is refused: a checkpoint is a tree.
template <class T>
Tree<T> read_node(hid_t parent, const std::string& name, const std::string& path, int depth,
                  Walk& walk, bool values) {
  const std::string& file = walk.file;
  const std::string what = in_quotes(path);
  if (depth > max_depth) throw DataError("entries nested deeper than 256 levels at " + what, file);
  H5L_info_t link;
  if (H5Lget_info(parent, name.c_str(), &link, H5P_DEFAULT) < 0) corrupt(file, what);
  if (link.type != H5L_TYPE_HARD)
    throw DataError(what + " is a soft or external link; a checkpoint holds only groups and "
                           "datasets",
                    file);
  if (!walk.reached.insert(link.u.address).second)
    throw DataError(what + " is a hard link to an object reached before (by another path); "
                           "a checkpoint holds each group and dataset once",
                    file);
  if (walk.headers) walk.headers->object_header(link.u.address, what);
  Handle object(H5Oopen(parent, name.c_str(), H5P_DEFAULT), H5Oclose);
  if (!object.valid()) corrupt(file, what);
  const H5I_type_t kind = H5Iget_type(object);
  if (kind == H5I_DATASET) return Tree<T>(read_dataset<T>(object, path, walk, values));
  if (kind != H5I_GROUP)
    throw DataError(what + " is neither a group nor a dataset", file);
  walk.structure.group(path);
  Tree<T> tree;
  for (const std::string& child : link_names(object, path, file))
    tree.add(child, read_node<T>(object, child, join_path(path, child), depth + 1, walk, values));
  return tree;
}

// Reads the checkpoint; with `only`, just the tree of that name (ConfigError when absent).
// The other trees' structure is read too, for the checksum over all names and shapes.
template <class T>
Checkpoint<T> load_impl(const std::string& file, const std::string* only) {
  Hdf5Session session;
  const Descriptor fd(file);
  std::optional<HeaderCheck> headers = HeaderCheck::of(fd.get(), file);
  if (headers) headers->opening_headers();
  Handle h5 = open_hdf5(file);
  Checkpoint<T> checkpoint;
  checkpoint.info = read_root<T>(h5, file, headers ? &*headers : nullptr);
  const auto stored_structure = read_int_attribute(h5, checksum_name, file);
  Walk walk(file);
  walk.headers = headers ? &*headers : nullptr;
  walk.structure.info(checkpoint.info, Element<T>::name);
  if (H5Fget_filesize(h5, &walk.file_size) < 0) corrupt(file, "file size");
  Handle root(H5Gopen2(h5, "/", H5P_DEFAULT), H5Gclose);
  H5O_info_t root_info;
  if (!root.valid() || H5Oget_info2(root, &root_info, H5O_INFO_BASIC) < 0)
    corrupt(file, "root group");
  walk.reached.insert(root_info.addr);
  const std::vector<std::string> names = link_names(root, "", file);
  for (const std::string& name : names) {
    const bool wanted = !only || name == *only;
    Tree<T> tree = read_node<T>(root, name, name, 1, walk, wanted);
    if (wanted) checkpoint.trees.add(name, std::move(tree));
  }
  if (stored_structure && *stored_structure != walk.structure.value())
    throw DataError("corrupt checkpoint: the names, shapes, epoch, step or metadata do not "
                    "match the checksum stored with them",
                    file);
  if (only && checkpoint.trees.size() == 0) {
    std::string present;
    for (const std::string& name : names) present += (present.empty() ? "" : ", ") + name;
    throw ConfigError("the checkpoint has no tree " + in_quotes(*only) + " (it has: " +
                          (present.empty() ? "nothing" : present) + ")",
                      file);
  }
  return checkpoint;
}

// Copies the values of `from` into `into` (same structure, checked), without reallocating.
template <class T>
void copy_values(Tree<T>& into, const Tree<T>& from) {
  if (into.is_leaf()) {
    std::copy(from.value().begin(), from.value().end(), into.value().begin());
    return;
  }
  for (std::size_t i = 0; i < into.size(); ++i) copy_values(into.child(i), from.child(i));
}

}  // namespace

template <class T>
Checkpoint<T> load_checkpoint(const std::string& path) {
  return load_impl<T>(path, nullptr);
}

template <class T>
Tree<T> load_params(const std::string& path) {
  const std::string name = "params";
  return std::move(load_impl<T>(path, &name).trees.child(0));
}

template <class T>
void load_into(const std::string& path, const std::string& name, Tree<T>& into) {
  const Checkpoint<T> checkpoint = load_impl<T>(path, &name);
  const Tree<T>& loaded = checkpoint.trees.child(0);
  into.check_same_structure(loaded, "tree '" + name + "' of checkpoint " + path);
  copy_values(into, loaded);
}

template Checkpoint<float> load_checkpoint<float>(const std::string&);
template Checkpoint<double> load_checkpoint<double>(const std::string&);
template Tree<float> load_params<float>(const std::string&);
template Tree<double> load_params<double>(const std::string&);
template void load_into<float>(const std::string&, const std::string&, Tree<float>&);
template void load_into<double>(const std::string&, const std::string&, Tree<double>&);

}  // namespace layercache
