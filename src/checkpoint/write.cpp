// Writing checkpoints (docs/checkpoints.md): the trees are checked, built into an HDF5 file
// image in memory, and written atomically — a temporary file next to the target, synced and
// renamed over it — so a failure never leaves a half-written checkpoint behind.
#include "layercache/checkpoint.hpp"

#include <hdf5.h>

#include <cstring>
#include <set>

#include "../atomic_file.hpp"
#include "format.hpp"
#include "hdf5_session.hpp"
#include "hdf5_workarounds.hpp"

namespace layercache {
namespace {

// What this file shares with the reader: format.hpp, hdf5_session.hpp.
using namespace detail;

[[noreturn]] void write_failed(const std::string& file, const std::string& what) {
  throw IoError("cannot write checkpoint: " + what + hdf5_reason(), file);
}

// The property lists every object of a checkpoint is created with: children listed in
// creation order (tracked, without an index: HDF5 sorts the links when asked for that order),
// names in UTF-8, no timestamps (the same trees give the same bytes).
struct CreateProps {
  Handle file{H5Pcreate(H5P_FILE_CREATE), H5Pclose};
  Handle group{H5Pcreate(H5P_GROUP_CREATE), H5Pclose};
  Handle dataset{H5Pcreate(H5P_DATASET_CREATE), H5Pclose};
  Handle link{H5Pcreate(H5P_LINK_CREATE), H5Pclose};

  bool configure() {
    const unsigned order = H5P_CRT_ORDER_TRACKED;
    return file.valid() && group.valid() && dataset.valid() && link.valid() &&
           H5Pset_link_creation_order(file, order) >= 0 &&
           H5Pset_obj_track_times(file, false) >= 0 &&
           H5Pset_link_creation_order(group, order) >= 0 &&
           H5Pset_obj_track_times(group, false) >= 0 &&
           H5Pset_obj_track_times(dataset, false) >= 0 &&
           H5Pset_char_encoding(link, H5T_CSET_UTF8) >= 0;
  }
};

// A scalar attribute of file type `stored`, written from `data` of memory type `memory`.
void write_attribute(hid_t object, const char* name, hid_t stored, hid_t memory,
                     const void* data, const std::string& file) {
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Handle attribute(space.valid() ? H5Acreate2(object, name, stored, space, H5P_DEFAULT,
                                              H5P_DEFAULT)
                                 : H5I_INVALID_HID,
                   H5Aclose);
  if (!attribute.valid() || H5Awrite(attribute, memory, data) < 0)
    write_failed(file, std::string("attribute '") + name + "'");
}

// Strings are fixed-length (the text and its terminating NUL), stored in the object header
// itself: no variable-length data in HDF5's global heap.
void write_string_attribute(hid_t object, const char* name, const std::string& value,
                            const std::string& file) {
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  if (!type.valid() || H5Tset_size(type, value.size() + 1) < 0 ||
      H5Tset_strpad(type, H5T_STR_NULLTERM) < 0 || H5Tset_cset(type, H5T_CSET_UTF8) < 0)
    write_failed(file, std::string("attribute '") + name + "'");
  write_attribute(object, name, type, type, value.c_str(), file);
}

void write_int_attribute(hid_t object, const char* name, std::int64_t value,
                         const std::string& file) {
  write_attribute(object, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &value, file);
}

void write_checksum_attribute(hid_t object, std::uint32_t value, const std::string& file) {
  write_attribute(object, checksum_name, H5T_STD_U32LE, H5T_NATIVE_UINT32, &value, file);
}

// Dataset dims are (n_rows, n_cols) in HDF5's row-major order, so the column-major matrix is
// written transposed; a vector reads the same either way and is written straight.
template <class T>
void write_dataset(hid_t parent, const std::string& name, const arma::Mat<T>& m,
                   const std::string& path, const CreateProps& props, const std::string& file,
                   StructureChecksum& structure) {
  structure.dataset(path, m.n_rows, m.n_cols);
  const hsize_t dims[2] = {m.n_rows, m.n_cols};
  Handle space(H5Screate_simple(2, dims, nullptr), H5Sclose);
  Handle set(H5Dcreate2(parent, name.c_str(), Element<T>::file_type(), space, props.link,
                        props.dataset, H5P_DEFAULT),
             H5Dclose);
  if (!space.valid() || !set.valid()) write_failed(file, "cannot create dataset " + in_quotes(path));
  if (m.n_elem == 0) return write_checksum_attribute(set, values_checksum<T>(nullptr, 0), file);
  const bool vector = m.n_rows == 1 || m.n_cols == 1;
  const arma::Mat<T> row_major = vector ? arma::Mat<T>() : arma::Mat<T>(m.t());
  const T* data = vector ? m.memptr() : row_major.memptr();
  if (H5Dwrite(set, Element<T>::memory_type(), H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
    write_failed(file, "dataset " + in_quotes(path));
  write_checksum_attribute(set, values_checksum(data, m.n_elem), file);
}

template <class T>
void write_node(hid_t parent, const std::string& name, const Tree<T>& tree,
                const std::string& path, const CreateProps& props, const std::string& file,
                StructureChecksum& structure) {
  if (tree.is_leaf())
    return write_dataset(parent, name, tree.value(), path, props, file, structure);
  structure.group(path);
  Handle group(H5Gcreate2(parent, name.c_str(), props.link, props.group, H5P_DEFAULT), H5Gclose);
  if (!group.valid()) write_failed(file, "cannot create group " + in_quotes(path));
  for (std::size_t i = 0; i < tree.size(); ++i)
    write_node(group, tree.name(i), tree.child(i), join_path(path, tree.name(i)), props, file,
               structure);
}

// What the load would refuse is refused before the disk is touched: names HDF5 cannot store
// ("." means the group itself, a NUL ends the name early) and nesting deeper than the reader
// accepts (max_depth; the tree itself is at depth `depth`).
template <class T>
void check_names(const Tree<T>& tree, const std::string& path, int depth) {
  if (depth > max_depth)
    throw ConfigError("cannot save entries nested deeper than " + std::to_string(max_depth) +
                          " levels (a checkpoint reader refuses them)",
                      path);
  for (std::size_t i = 0; i < tree.size(); ++i) {
    const std::string child = join_path(path, tree.name(i));
    if (tree.name(i) == ".")
      throw ConfigError("a checkpoint cannot store an entry named '.'", child);
    if (tree.name(i).find('\0') != std::string::npos)
      throw ConfigError("a checkpoint cannot store an entry name with a NUL character", child);
    check_names(tree.child(i), child, depth + 1);
  }
}

template <class T>
void check_trees(const NamedTrees<T>& trees, const CheckpointInfo& info, const std::string& file) {
  std::set<std::string> seen;
  for (const auto& [name, tree] : trees) {
    if (name.empty() || name == "." || name.find('/') != std::string::npos ||
        name.find('\0') != std::string::npos)
      throw ConfigError("cannot save a tree named " + in_quotes(name) +
                            ": names must be non-empty, contain no '/' or NUL and not be '.'",
                        file);
    if (!seen.insert(name).second)
      throw ConfigError("cannot save two trees named " + in_quotes(name), file);
    if (!tree) throw ConfigError("cannot save tree " + in_quotes(name) + ": null pointer", file);
    check_names(*tree, name, 1);
  }
  if (info.metadata.find('\0') != std::string::npos)
    throw ConfigError("checkpoint metadata must be text without NUL characters", file);
}

// The whole checkpoint as an HDF5 file image built in memory (HDF5's "core" driver without a
// backing store). HDF5 thus never writes to disk itself: a write that fails half-way (a full
// disk) is ours to detect and clean up, and cannot leave HDF5 holding a half-closed file.
// `label` names the in-memory file. HDF5 first tries to open a file of that name on disk
// (reading all of it, with the core driver), so it must be our fresh, empty temporary file,
// never the old checkpoint.
template <class T>
std::vector<char> file_image(const std::string& label, const std::string& file,
                             const NamedTrees<T>& trees, const CheckpointInfo& info) {
  std::size_t estimate = 64 * 1024;  // header and attributes, then ~1 KiB of metadata per node
  for (const auto& entry : trees)
    estimate += entry.second->bytes() + 1024 * (entry.second->n_tensors() + 1);
  CreateProps props;
  Handle access(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  // HDF5 1.8's object headers, superblock and indexes carry checksums of their own, so
  // damage to the file's metadata is detected by HDF5 rather than read as garbage.
  if (!props.configure() || !access.valid() || H5Pset_fapl_core(access, estimate, false) < 0 ||
      H5Pset_libver_bounds(access, H5F_LIBVER_V18, H5F_LIBVER_V18) < 0)
    write_failed(file, "cannot set up HDF5 property lists");
  Handle h5(H5Fcreate(label.c_str(), H5F_ACC_TRUNC, props.file, access), H5Fclose);
  if (!h5.valid()) write_failed(file, "cannot create the HDF5 file in memory");
  write_string_attribute(h5, "format", format_name, file);
  write_int_attribute(h5, "format_version", checkpoint_format_version, file);
  write_string_attribute(h5, "element_type", Element<T>::name, file);
  write_string_attribute(h5, "layout", layout_name, file);
  write_int_attribute(h5, "epoch", info.epoch, file);
  write_int_attribute(h5, "step", info.step, file);
  write_string_attribute(h5, "metadata", info.metadata, file);
  StructureChecksum structure;
  structure.info(info, Element<T>::name);
  for (const auto& [name, tree] : trees) write_node(h5, name, *tree, name, props, file, structure);
  write_checksum_attribute(h5, structure.value(), file);
  // Without the flush the image lacks the metadata HDF5 still caches.
  if (H5Fflush(h5, H5F_SCOPE_GLOBAL) < 0) write_failed(file, "cannot build the file image");
  const ssize_t size = H5Fget_file_image(h5, nullptr, 0);
  if (size < 0) write_failed(file, "cannot build the file image");
  std::vector<char> image(static_cast<std::size_t>(size));
  if (H5Fget_file_image(h5, image.data(), image.size()) != size || !h5.close())
    write_failed(file, "cannot build the file image");
  fix_superblock_checksum(image);
  return image;
}

template <class T>
void save_impl(const std::string& file, const NamedTrees<T>& trees, const CheckpointInfo& info) {
  check_trees(trees, info, file);
  AtomicFile temp(file, "checkpoint");
  std::vector<char> image;
  {
    Hdf5Session session;
    image = file_image(temp.name(), file, trees, info);
  }
  temp.write(image.data(), image.size());
  temp.commit();
}

}  // namespace

void save_checkpoint(const std::string& path, const NamedTrees<float>& trees,
                     const CheckpointInfo& info) {
  save_impl(path, trees, info);
}

void save_checkpoint(const std::string& path, const NamedTrees<double>& trees,
                     const CheckpointInfo& info) {
  save_impl(path, trees, info);
}

template <class T>
void save_params(const std::string& path, const Tree<T>& params, const CheckpointInfo& info) {
  save_impl(path, NamedTrees<T>{{"params", &params}}, info);
}

template void save_params<float>(const std::string&, const Tree<float>&, const CheckpointInfo&);
template void save_params<double>(const std::string&, const Tree<double>&, const CheckpointInfo&);

}  // namespace layercache
