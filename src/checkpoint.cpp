// Checkpoints as HDF5 files (docs/checkpoints.md): atomic writes, typed errors on reads.
//
// Everything HDF5 lives in this file. Every HDF5 call goes through an Hdf5Session, which
// serializes layercache's use of the library and silences HDF5's own printing to stderr;
// failures become IoError (writing) or DataError (reading) naming the file, with HDF5's
// most specific reason appended.
#include "layercache/checkpoint.hpp"

#include <fcntl.h>
#include <hdf5.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string_view>

namespace layercache {
namespace {

constexpr const char* format_name = "layercache-checkpoint";
constexpr const char* layout_name = "row-major";
// The attribute holding a CRC-32: of a dataset's bytes, or (on the root) of the structure.
constexpr const char* checksum_name = "crc32";
// A hard link may point back to an ancestor group; deeper nesting than this is a corrupt file.
constexpr int max_depth = 256;

template <class T>
struct Element;
template <>
struct Element<float> {
  static constexpr const char* name = "float32";
  static hid_t file_type() { return H5T_IEEE_F32LE; }
  static hid_t memory_type() { return H5T_NATIVE_FLOAT; }
};
template <>
struct Element<double> {
  static constexpr const char* name = "float64";
  static hid_t file_type() { return H5T_IEEE_F64LE; }
  static hid_t memory_type() { return H5T_NATIVE_DOUBLE; }
};

// ---------------------------------------------------------------------------------------------
// HDF5 plumbing.

std::mutex hdf5_mutex;

// Holds the lock on HDF5 and turns off its automatic error printing for the duration.
class Hdf5Session {
 public:
  Hdf5Session() : lock_(hdf5_mutex) {
    H5Eget_auto2(H5E_DEFAULT, &old_func_, &old_data_);
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }
  ~Hdf5Session() { H5Eset_auto2(H5E_DEFAULT, old_func_, old_data_); }
  Hdf5Session(const Hdf5Session&) = delete;
  Hdf5Session& operator=(const Hdf5Session&) = delete;

 private:
  std::lock_guard<std::mutex> lock_;
  H5E_auto2_t old_func_ = nullptr;
  void* old_data_ = nullptr;
};

// One HDF5 identifier, closed when the handle dies.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle(hid_t id, Closer close) : id_(id), close_(close) {}
  ~Handle() { close(); }
  Handle(Handle&& other) noexcept : id_(other.id_), close_(other.close_) {
    other.id_ = H5I_INVALID_HID;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  Handle& operator=(Handle&&) = delete;

  bool valid() const noexcept { return id_ >= 0; }
  operator hid_t() const noexcept { return id_; }
  // Closes now; false when HDF5 reports a failure (for a file: the final flush failed).
  bool close() noexcept {
    if (id_ < 0) return true;
    const herr_t status = close_(id_);
    id_ = H5I_INVALID_HID;
    return status >= 0;
  }

 private:
  hid_t id_;
  Closer close_;
};

// The most specific message on HDF5's error stack, as " (HDF5: ...)", or "" when empty.
std::string hdf5_reason() {
  std::string reason;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_UPWARD,
      [](unsigned n, const H5E_error2_t* error, void* out) -> herr_t {
        if (n == 0 && error->desc) *static_cast<std::string*>(out) = error->desc;
        return 0;
      },
      &reason);
  H5Eclear2(H5E_DEFAULT);
  return reason.empty() ? std::string() : " (HDF5: " + reason + ")";
}

std::string in_quotes(const std::string& s) { return "'" + s + "'"; }

// ---------------------------------------------------------------------------------------------
// Checksums (zlib's CRC-32), so that damaged values and names are detected on reading.

std::uint32_t crc_update(std::uint32_t crc, const void* data, std::size_t size) {
  const auto* bytes = static_cast<const Bytef*>(data);
  while (size > 0) {  // zlib takes at most 4 GiB per call
    const auto n = static_cast<uInt>(std::min<std::size_t>(size, 1u << 30));
    crc = static_cast<std::uint32_t>(crc32(crc, bytes, n));
    bytes += n;
    size -= n;
  }
  return crc;
}

// The CRC-32 of n values as a dataset stores them: little-endian, in the buffer's order.
template <class T>
std::uint32_t values_checksum(const T* data, std::size_t n) {
  if constexpr (std::endian::native == std::endian::little) {
    return crc_update(0, data, n * sizeof(T));
  } else {
    std::uint32_t crc = 0;
    for (std::size_t i = 0; i < n; ++i) {
      unsigned char bytes[sizeof(T)];
      std::memcpy(bytes, data + i, sizeof(T));
      std::reverse(std::begin(bytes), std::end(bytes));
      crc = crc_update(crc, bytes, sizeof(T));
    }
    return crc;
  }
}

// The CRC-32 over a checkpoint's description (docs/checkpoints.md, "Checksums"): a sequence
// of NUL-terminated text fields naming the element type, epoch, step, metadata and then every
// group and dataset in saved order with its shape. Writer and reader feed it the same way.
class StructureChecksum {
 public:
  void field(const std::string& text) { crc_ = crc_update(crc_, text.c_str(), text.size() + 1); }
  void info(const CheckpointInfo& info, const char* element_type) {
    field(std::string("element_type ") + element_type);
    field("epoch " + std::to_string(info.epoch));
    field("step " + std::to_string(info.step));
    field("metadata " + info.metadata);
  }
  void group(const std::string& path) { field("group " + path); }
  void dataset(const std::string& path, std::uint64_t rows, std::uint64_t cols) {
    field("dataset " + std::to_string(rows) + " " + std::to_string(cols) + " " + path);
  }
  std::uint32_t value() const noexcept { return crc_; }

 private:
  std::uint32_t crc_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Writing.

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

// Names HDF5 cannot store ("." means the group itself) are rejected before the disk is touched.
template <class T>
void check_names(const Tree<T>& tree, const std::string& path) {
  for (std::size_t i = 0; i < tree.size(); ++i) {
    const std::string child = join_path(path, tree.name(i));
    if (tree.name(i) == ".")
      throw ConfigError("a checkpoint cannot store an entry named '.'", child);
    check_names(tree.child(i), child);
  }
}

template <class T>
void check_trees(const NamedTrees<T>& trees, const CheckpointInfo& info, const std::string& file) {
  std::set<std::string> seen;
  for (const auto& [name, tree] : trees) {
    if (name.empty() || name == "." || name.find('/') != std::string::npos)
      throw ConfigError("cannot save a tree named " + in_quotes(name) +
                            ": names must be non-empty, contain no '/' and not be '.'",
                        file);
    if (!seen.insert(name).second)
      throw ConfigError("cannot save two trees named " + in_quotes(name), file);
    if (!tree) throw ConfigError("cannot save tree " + in_quotes(name) + ": null pointer", file);
    check_names(*tree, name);
  }
  if (info.metadata.find('\0') != std::string::npos)
    throw ConfigError("checkpoint metadata must be text without NUL characters", file);
}

// The 8 bytes an HDF5 superblock starts with.
constexpr char hdf5_signature[] = "\x89HDF\r\n\x1a\n";

// Bob Jenkins' lookup3 hash (hashlittle, initial value 0): HDF5's checksum of its metadata.
std::uint32_t lookup3(const unsigned char* k, std::size_t length) {
  const auto rot = [](std::uint32_t x, int r) { return (x << r) | (x >> (32 - r)); };
  std::uint32_t a, b, c;
  a = b = c = 0xdeadbeef + static_cast<std::uint32_t>(length);
  const auto word = [&](std::size_t at, std::size_t n) {  // n <= 4 little-endian bytes
    std::uint32_t w = 0;
    for (std::size_t i = 0; i < n; ++i) w |= std::uint32_t(k[at + i]) << (8 * i);
    return w;
  };
  for (; length > 12; length -= 12, k += 12) {
    a += word(0, 4), b += word(4, 4), c += word(8, 4);
    a -= c, a ^= rot(c, 4), c += b, b -= a, b ^= rot(a, 6), a += c;
    c -= b, c ^= rot(b, 8), b += a, a -= c, a ^= rot(c, 16), c += b;
    b -= a, b ^= rot(a, 19), a += c, c -= b, c ^= rot(b, 4), b += a;
  }
  if (length == 0) return c;
  a += word(0, std::min<std::size_t>(length, 4));
  if (length > 4) b += word(4, std::min<std::size_t>(length - 4, 4));
  if (length > 8) c += word(8, length - 8);
  c ^= b, c -= rot(b, 14), a ^= c, a -= rot(c, 11), b ^= a, b -= rot(a, 25);
  c ^= b, c -= rot(b, 16), a ^= c, a -= rot(c, 4), b ^= a, b -= rot(a, 14);
  c ^= b, c -= rot(b, 24);
  return c;
}

// HDF5 1.10's H5Fget_file_image clears the status flags of a version 2 or 3 superblock in
// the image without updating the superblock's checksum; this recomputes it.
void fix_superblock_checksum(std::vector<char>& image) {
  auto* bytes = reinterpret_cast<unsigned char*>(image.data());
  if (image.size() < 12 || std::memcmp(bytes, hdf5_signature, 8) != 0 ||
      (bytes[8] != 2 && bytes[8] != 3))
    return;
  const std::size_t offset = 12 + 4 * std::size_t(bytes[9]);  // 4 addresses, then the checksum
  if (image.size() < offset + 4) return;
  const std::uint32_t sum = lookup3(bytes, offset);
  for (int i = 0; i < 4; ++i) bytes[offset + i] = static_cast<unsigned char>(sum >> (8 * i));
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

[[noreturn]] void io_failed(const std::string& file, const std::string& what) {
  throw IoError("cannot write checkpoint: " + what + ": " + std::strerror(errno), file);
}

// A fresh, empty file next to the target, removed when it goes out of scope unless committed.
class TempFile {
 public:
  explicit TempFile(const std::string& target) : target_(target) {
    std::random_device seed;
    std::mt19937 gen(seed());
    const char* alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
    std::uniform_int_distribution<int> pick(0, 35);
    for (int attempt = 0; attempt < 100; ++attempt) {
      std::string name = target + ".tmp-";
      for (int i = 0; i < 6; ++i) name += alphabet[pick(gen)];
      fd_ = ::open(name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
      if (fd_ >= 0) {
        name_ = std::move(name);
        return;
      }
      if (errno != EEXIST) io_failed(target, "cannot create a temporary file next to it");
    }
    throw IoError("cannot write checkpoint: no free temporary file name next to it", target);
  }
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!name_.empty()) ::unlink(name_.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  const std::string& name() const noexcept { return name_; }

  void write(const std::vector<char>& bytes) {
    std::size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) io_failed(target_, "writing " + in_quotes(name_) + " failed");
      done += static_cast<std::size_t>(n);
    }
  }

  // Forces the bytes to disk, renames the file over the target, and syncs the directory so the
  // rename itself survives a crash (best effort: the new file is in place by then).
  void commit() {
    if (::fsync(fd_) != 0) io_failed(target_, "fsync of " + in_quotes(name_) + " failed");
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) io_failed(target_, "closing " + in_quotes(name_) + " failed");
    if (std::rename(name_.c_str(), target_.c_str()) != 0)
      io_failed(target_, "cannot replace the file");
    name_.clear();
    std::string dir = std::filesystem::path(target_).parent_path().string();
    if (dir.empty()) dir = ".";
    const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd >= 0) {
      ::fsync(dir_fd);
      ::close(dir_fd);
    }
  }

 private:
  std::string target_;
  std::string name_;
  int fd_ = -1;
};

template <class T>
void save_impl(const std::string& file, const NamedTrees<T>& trees, const CheckpointInfo& info) {
  check_trees(trees, info, file);
  TempFile temp(file);
  std::vector<char> image;
  {
    Hdf5Session session;
    image = file_image(temp.name(), file, trees, info);
  }
  temp.write(image);
  temp.commit();
}

// ---------------------------------------------------------------------------------------------
// Reading.

[[noreturn]] void corrupt(const std::string& file, const std::string& what) {
  throw DataError("corrupt checkpoint: " + what + hdf5_reason(), file);
}

// ---------------------------------------------------------------------------------------------
// Object headers are checked before HDF5 loads them.
//
// libhdf5 1.10 leaks memory whenever it refuses certain damaged object headers: the header
// itself when it fails its checksum or claims to reach past the end of the file (HDF5 builds
// it from the header's first bytes, then drops it when the load fails; fixed upstream in 2024,
// never in the 1.10 series), and its list of continuation chunks when one of those cannot be
// loaded. Nothing in HDF5's API frees either, and the memory left out on HDF5's free lists
// keeps it from shutting down: at exit it prints "HDF5: infinite loop closing library". So
// before HDF5 opens an object, layercache reads the object's header through HDF5's own file
// descriptor and checks it as HDF5 will (where it ends, its checksum, the same for each
// continuation chunk); a damaged header is refused here, and HDF5 never reads it.

constexpr std::uint64_t undefined_address = ~std::uint64_t(0);

// An unsigned little-endian integer of n (1 to 8) bytes.
std::uint64_t little_endian(const unsigned char* p, unsigned n) {
  std::uint64_t value = 0;
  for (unsigned i = 0; i < n; ++i) value |= std::uint64_t(p[i]) << (8 * i);
  return value;
}

class HeaderCheck {
 public:
  // The checks for the file `h5` (opened with the sec2 driver); nothing when HDF5's file
  // descriptor or the superblock is not one this understands (HDF5 then reads unchecked).
  static std::optional<HeaderCheck> of(hid_t h5, const std::string& file) {
    void* handle = nullptr;
    struct stat info {};
    if (H5Fget_vfd_handle(h5, H5P_DEFAULT, &handle) < 0 || !handle) return std::nullopt;
    HeaderCheck check;
    check.file_ = file;
    check.fd_ = *static_cast<int*>(handle);
    if (::fstat(check.fd_, &info) != 0) return std::nullopt;
    const auto size = static_cast<std::uint64_t>(info.st_size);
    // HDF5 looks for the superblock at 0, 512, 1024, 2048, ... (after a user block).
    std::vector<unsigned char> sb;
    for (std::uint64_t at = 0; at + 8 <= size; at = at == 0 ? 512 : 2 * at) {
      check.super_ = at;
      if (check.read_physical(at, 8, sb) && std::memcmp(sb.data(), hdf5_signature, 8) == 0)
        return check.read_superblock() ? std::optional<HeaderCheck>(std::move(check))
                                       : std::nullopt;
    }
    return std::nullopt;
  }

  std::uint64_t root() const noexcept { return root_; }

  // Throws DataError when the object header at `address` (an address as HDF5 gives them,
  // e.g. in H5L_info_t) is damaged so that HDF5 would refuse it and leak.
  void object_header(std::uint64_t address, const std::string& what) {
    if (address >= eoa_ || !checked_.insert(address).second) return;
    const auto damaged = [&](const std::string& how) {
      throw DataError("corrupt checkpoint: the object header of " + what + " " + how, file_);
    };
    std::vector<unsigned char> image;
    const std::uint64_t room = eoa_ - address;
    read(address, static_cast<std::size_t>(std::min<std::uint64_t>(room, 512)), image);
    const unsigned char* p = image.data();
    std::vector<Chunk> chunks;
    int version = 1;
    bool creation_order = false;
    if (image.size() >= 4 && std::memcmp(p, "OHDR", 4) == 0) {  // version 2, with a checksum
      version = 2;
      if (image.size() < 6) damaged("is cut off by the end of the file");
      const unsigned flags = p[5];
      if (p[4] != 2 || (flags & ~0x3Fu) != 0) return;  // HDF5 refuses it without leaking
      // Signature, version, flags, [4 times], [attribute phase change], size of chunk 0.
      const unsigned size_bytes = 1u << (flags & 3);
      const std::size_t prefix =
          6 + ((flags & 0x20) ? 16 : 0) + ((flags & 0x10) ? 4 : 0) + size_bytes;
      if (prefix > image.size()) damaged("is cut off by the end of the file");
      const unsigned char* size_field = p + prefix - size_bytes;
      if ((flags & 0x10) && little_endian(size_field - 4, 2) < little_endian(size_field - 2, 2))
        return;
      creation_order = (flags & 0x04) != 0;
      const std::uint64_t chunk0 = little_endian(size_field, size_bytes);
      if (chunk0 > 0 && chunk0 < (creation_order ? 6u : 4u)) return;
      if (chunk0 > room - prefix || room - prefix - chunk0 < 4)
        damaged("reaches past the end of the file");
      const auto total = static_cast<std::size_t>(prefix + chunk0 + 4);
      read(address, total, image);
      if (!checksum_matches(image)) damaged("does not match its checksum");
      continuations(image.data() + prefix, image.data() + total - 4, version, creation_order,
                    chunks);
    } else {  // version 1, without a checksum: only its extent can be checked
      if (image.empty() || p[0] != 1) return;
      if (image.size() < 16) damaged("is cut off by the end of the file");
      const std::uint64_t messages = little_endian(p + 2, 2), chunk0 = little_endian(p + 8, 4);
      if ((messages > 0 && chunk0 < 8) || (messages == 0 && chunk0 > 0)) return;
      if (chunk0 > room - 16) damaged("reaches past the end of the file");
      const auto total = static_cast<std::size_t>(16 + chunk0);
      read(address, total, image);
      continuations(image.data() + 16, image.data() + total, version, false, chunks);
    }
    // Continuation chunks, which may hold further continuation messages.
    std::set<std::uint64_t> seen;
    for (std::size_t i = 0; i < chunks.size() && i < max_chunks; ++i) {
      const Chunk chunk = chunks[i];
      if (!seen.insert(chunk.address).second) continue;
      if (chunk.address >= eoa_ || chunk.size > eoa_ - chunk.address)
        damaged("continues past the end of the file");
      if (version == 1) {
        read(chunk.address, static_cast<std::size_t>(chunk.size), image);
        continuations(image.data(), image.data() + image.size(), version, false, chunks);
        continue;
      }
      if (chunk.size < 8) damaged("has a continuation chunk too small to be one");
      read(chunk.address, static_cast<std::size_t>(chunk.size), image);
      if (std::memcmp(image.data(), "OCHK", 4) != 0 || !checksum_matches(image))
        damaged("has a continuation chunk that does not match its checksum");
      continuations(image.data() + 4, image.data() + image.size() - 4, version, creation_order,
                    chunks);
    }
  }

 private:
  struct Chunk {
    std::uint64_t address, size;
  };
  static constexpr std::size_t max_chunks = 1 << 16;

  std::string file_;
  int fd_ = -1;
  std::uint64_t super_ = 0;  // where the superblock is: the file's addresses count from here
  std::uint64_t eoa_ = 0;    // the end of the file's address space, as its superblock says
  std::uint64_t root_ = 0;   // the root group's object header
  unsigned address_size_ = 8, length_size_ = 8;
  std::set<std::uint64_t> checked_;

  // Reads n bytes at a physical offset, as HDF5's sec2 driver does: zeros past the end of the
  // file. False when the file cannot be read.
  bool read_physical(std::uint64_t offset, std::size_t n, std::vector<unsigned char>& out) const {
    out.assign(n, 0);
    std::size_t done = 0;
    while (done < n) {
      const ssize_t got =
          ::pread(fd_, out.data() + done, n - done, static_cast<off_t>(offset + done));
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) return false;
      if (got == 0) break;
      done += static_cast<std::size_t>(got);
    }
    return true;
  }
  void read(std::uint64_t address, std::size_t n, std::vector<unsigned char>& out) const {
    if (!read_physical(super_ + address, n, out))
      throw IoError("cannot read checkpoint: " + std::string(std::strerror(errno)), file_);
  }

  // Superblock versions 0 to 3: sizes of addresses and lengths, the end of the address space
  // and the root group's object header.
  bool read_superblock() {
    std::vector<unsigned char> sb;
    if (!read_physical(super_, 128, sb)) return false;
    const unsigned version = sb[8];
    std::size_t at = 0;
    if (version <= 1) {
      address_size_ = sb[13], length_size_ = sb[14];
      at = version == 0 ? 24 : 28;
    } else if (version <= 3) {
      address_size_ = sb[9], length_size_ = sb[10];
      at = 12;
    } else {
      return false;
    }
    const auto valid = [](unsigned n) { return n == 2 || n == 4 || n == 8; };
    if (!valid(address_size_) || !valid(length_size_)) return false;
    const auto address = [&] {
      const std::uint64_t value = little_endian(sb.data() + at, address_size_);
      at += address_size_;
      return value == (address_size_ == 8 ? ~std::uint64_t(0)
                                          : (std::uint64_t(1) << (8 * address_size_)) - 1)
                 ? undefined_address
                 : value;
    };
    const std::uint64_t base = address();
    address();  // v0/1: the free-space info; v2/3: the superblock extension
    const std::uint64_t eof = address();
    if (version <= 1) {
      address();           // the driver information block
      at += length_size_;  // the root's symbol table entry: its name's offset, then its header
    }
    root_ = address();
    if (base == undefined_address || eof == undefined_address || eof < base) return false;
    eoa_ = eof - base;
    return true;
  }

  // HDF5's checksum of metadata: lookup3 over all but the last 4 bytes, which hold it.
  static bool checksum_matches(const std::vector<unsigned char>& image) {
    const std::size_t n = image.size() - 4;
    return lookup3(image.data(), n) == little_endian(image.data() + n, 4);
  }

  // Appends the continuation messages among the messages in [p, end) of an object header
  // chunk; stops where HDF5 would find the messages malformed (it then refuses the header).
  void continuations(const unsigned char* p, const unsigned char* end, int version,
                     bool creation_order, std::vector<Chunk>& out) const {
    const std::size_t header = version == 1 ? 8 : creation_order ? 6 : 4;
    while (p < end && static_cast<std::size_t>(end - p) >= header) {
      const unsigned type = version == 1 ? unsigned(little_endian(p, 2)) : p[0];
      const std::size_t size = little_endian(p + (version == 1 ? 2 : 1), 2);
      p += header;
      if (size > static_cast<std::size_t>(end - p)) return;
      if (type == 0x10 && size >= address_size_ + length_size_)
        out.push_back(
            {little_endian(p, address_size_), little_endian(p + address_size_, length_size_)});
      p += size;
    }
  }
};

Handle open_for_reading(const std::string& file) {
  struct stat info {};
  if (::stat(file.c_str(), &info) != 0)
    throw IoError("cannot open checkpoint: " + std::string(std::strerror(errno)), file);
  if (S_ISDIR(info.st_mode)) throw IoError("cannot open checkpoint: it is a directory", file);
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw IoError("cannot read checkpoint: " + std::string(std::strerror(errno)), file);
  ::close(fd);
  // The sec2 driver (HDF5's default) explicitly: HeaderCheck reads through its descriptor.
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

// The attribute as text, or nothing when the object has no attribute of that name.
std::optional<std::string> read_string_attribute(hid_t object, const char* name,
                                                 const std::string& file) {
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
CheckpointInfo read_root(hid_t h5, const std::string& file) {
  const auto format = read_string_attribute(h5, "format", file);
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
  const auto layout = read_string_attribute(h5, "layout", file);
  if (layout != std::optional<std::string>(layout_name))
    throw DataError("layout is '" + layout.value_or("") + "', expected '" + layout_name + "'",
                    file);
  const auto element = read_string_attribute(h5, "element_type", file);
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
  info.metadata = read_string_attribute(h5, "metadata", file).value_or("");
  return info;
}

// Names of a group's links, in creation order when the group tracks it (ours always do),
// by name otherwise (a file written by another tool).
std::vector<std::string> link_names(hid_t group, const std::string& path, const std::string& file) {
  const std::string what = "group " + in_quotes(path.empty() ? "/" : path);
  H5G_info_t info;
  Handle plist(H5Gget_create_plist(group), H5Pclose);
  unsigned order = 0;
  if (H5Gget_info(group, &info) < 0 || !plist.valid() ||
      H5Pget_link_creation_order(plist, &order) < 0)
    corrupt(file, what);
  const H5_index_t index = (order & H5P_CRT_ORDER_TRACKED) ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME;
  std::vector<std::string> names;
  // One pass over the links: without a creation-order index HDF5 sorts them once per call.
  hsize_t next = 0;
  if (H5Literate(
          group, index, H5_ITER_INC, &next,
          [](hid_t, const char* name, const H5L_info_t*, void* out) -> herr_t {
            static_cast<std::vector<std::string>*>(out)->emplace_back(name);
            return 0;
          },
          &names) < 0 ||
      names.size() != info.nlinks)
    corrupt(file, what);
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

// The dataset's values; with `values` false only its shape (an empty matrix of that shape
// is not allocated: the result is then (0 × 0)), for the structure checksum.
template <class T>
arma::Mat<T> read_dataset(hid_t set, const std::string& path, const std::string& file,
                          hsize_t file_size, StructureChecksum& structure, bool values) {
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
  // An unfiltered dataset cannot hold more bytes than the file: bigger dims are corruption
  // (and must not turn into a huge allocation).
  if ((cols != 0 && rows > limit / cols) ||
      (H5Pget_nfilters(plist) == 0 && rows * cols * sizeof(T) > file_size))
    throw DataError(what + " claims " + std::to_string(rows) + " × " + std::to_string(cols) +
                        " values, more than the file holds",
                    file);
  structure.dataset(path, rows, cols);
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

// The tree at `path`; with `values` false, its structure only (see read_dataset).
template <class T>
Tree<T> read_node(hid_t parent, const std::string& name, const std::string& path,
                  const std::string& file, hsize_t file_size, int depth,
                  StructureChecksum& structure, bool values, HeaderCheck* headers) {
  const std::string what = in_quotes(path);
  if (depth > max_depth) throw DataError("entries nested deeper than 256 levels at " + what, file);
  H5L_info_t link;
  if (H5Lget_info(parent, name.c_str(), &link, H5P_DEFAULT) < 0) corrupt(file, what);
  if (link.type != H5L_TYPE_HARD)
    throw DataError(what + " is a soft or external link; a checkpoint holds only groups and "
                           "datasets",
                    file);
  if (headers) headers->object_header(link.u.address, what);
  Handle object(H5Oopen(parent, name.c_str(), H5P_DEFAULT), H5Oclose);
  if (!object.valid()) corrupt(file, what);
  const H5I_type_t kind = H5Iget_type(object);
  if (kind == H5I_DATASET)
    return Tree<T>(read_dataset<T>(object, path, file, file_size, structure, values));
  if (kind != H5I_GROUP)
    throw DataError(what + " is neither a group nor a dataset", file);
  structure.group(path);
  Tree<T> tree;
  for (const std::string& child : link_names(object, path, file))
    tree.add(child, read_node<T>(object, child, join_path(path, child), file, file_size,
                                 depth + 1, structure, values, headers));
  return tree;
}

// Reads the checkpoint; with `only`, just the tree of that name (ConfigError when absent).
// The other trees' structure is read too, for the checksum over all names and shapes.
template <class T>
Checkpoint<T> load_impl(const std::string& file, const std::string* only) {
  Hdf5Session session;
  Handle h5 = open_for_reading(file);
  std::optional<HeaderCheck> headers = HeaderCheck::of(h5, file);
  if (headers) headers->object_header(headers->root(), "the root group");
  Checkpoint<T> checkpoint;
  checkpoint.info = read_root<T>(h5, file);
  const auto stored_structure = read_int_attribute(h5, checksum_name, file);
  StructureChecksum structure;
  structure.info(checkpoint.info, Element<T>::name);
  hsize_t file_size = 0;
  if (H5Fget_filesize(h5, &file_size) < 0) corrupt(file, "file size");
  Handle root(H5Gopen2(h5, "/", H5P_DEFAULT), H5Gclose);
  if (!root.valid()) corrupt(file, "root group");
  const std::vector<std::string> names = link_names(root, "", file);
  for (const std::string& name : names) {
    const bool wanted = !only || name == *only;
    Tree<T> tree = read_node<T>(root, name, name, file, file_size, 1, structure, wanted,
                                headers ? &*headers : nullptr);
    if (wanted) checkpoint.trees.add(name, std::move(tree));
  }
  if (stored_structure && *stored_structure != structure.value())
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

void save_checkpoint(const std::string& path, const NamedTrees<float>& trees,
                     const CheckpointInfo& info) {
  save_impl(path, trees, info);
}

void save_checkpoint(const std::string& path, const NamedTrees<double>& trees,
                     const CheckpointInfo& info) {
  save_impl(path, trees, info);
}

template <class T>
Checkpoint<T> load_checkpoint(const std::string& path) {
  return load_impl<T>(path, nullptr);
}

template <class T>
void save_params(const std::string& path, const Tree<T>& params, const CheckpointInfo& info) {
  save_impl(path, NamedTrees<T>{{"params", &params}}, info);
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
template void save_params<float>(const std::string&, const Tree<float>&, const CheckpointInfo&);
template void save_params<double>(const std::string&, const Tree<double>&, const CheckpointInfo&);
template Tree<float> load_params<float>(const std::string&);
template Tree<double> load_params<double>(const std::string&);
template void load_into<float>(const std::string&, const std::string&, Tree<float>&);
template void load_into<double>(const std::string&, const std::string&, Tree<double>&);

}  // namespace layercache
