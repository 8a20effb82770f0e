// Library-internal (not installed): HDF5 object-header and superblock checks, apart from the
// checkpoint format itself (see hdf5_workarounds.cpp for the libhdf5 versions they guard
// against).
#pragma once

#include <hdf5.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace layercache::detail {

// An unsigned little-endian integer of n (1 to 8) bytes.
inline std::uint64_t little_endian(const unsigned char* p, unsigned n) {
  std::uint64_t value = 0;
  for (unsigned i = 0; i < n; ++i) value |= std::uint64_t(p[i]) << (8 * i);
  return value;
}

// Recomputes the checksum of a version 2 or 3 superblock at the start of a file image, which
// HDF5 1.10's H5Fget_file_image leaves stale; does nothing to other images.
void fix_superblock_checksum(std::vector<char>& image);

// The object headers of one open file, each checked before HDF5 loads it.
class HeaderCheck {
 public:
  // The checks for the file open for reading as `fd` (which must stay open while they are
  // used); nothing when the superblock is not one this understands (HDF5 then reads
  // unchecked).
  static std::optional<HeaderCheck> of(int fd, const std::string& file);

  std::uint64_t root() const noexcept { return root_; }

  // Checks the object headers libhdf5 reads while it opens the file (the root group's, and
  // the superblock extension's when there is one), before it does: it leaks refusing them too.
  void opening_headers() {
    object_header(root_, "the root group");
    if (extension_ != ~std::uint64_t(0)) object_header(extension_, "the superblock extension");
  }

  // Throws DataError when the object header at `address` (an address as HDF5 gives them,
  // e.g. in H5L_info_t) is damaged so that HDF5 would refuse it and leak.
  void object_header(std::uint64_t address, const std::string& what);

  // Throws DataError unless the value of the variable-length string attribute `name` (one
  // value: the caller checked its dataspace) of the object whose header is at `address`
  // refers to an intact object of a global heap
  // collection that holds exactly the string's length, so that HDF5 can read it (libhdf5
  // 1.10 loops forever on a collection whose free space has size 0, and reads or writes out
  // of bounds on a reference to an object the collection lacks or of another length); also
  // when the attribute cannot be found in the header itself (shared, or stored densely).
  // variable_strings.cpp.
  void variable_string(std::uint64_t address, const std::string& name,
                       const std::string& what) const;

 private:
  struct Chunk {
    std::uint64_t address, size;
  };
  // The messages of one chunk of an object header, as in the header (without its prefix or
  // checksum).
  struct MessageArea {
    std::vector<unsigned char> bytes;
    int version;
    bool creation_order;
  };
  static constexpr std::size_t max_chunks = 1 << 16;

  std::string file_;
  int fd_ = -1;
  std::uint64_t super_ = 0;  // where the superblock is: the file's addresses count from here
  std::uint64_t eoa_ = 0;    // the end of the file's address space, as its superblock says
  std::uint64_t root_ = 0;   // the root group's object header
  std::uint64_t extension_ = ~std::uint64_t(0);  // the superblock extension's, if any
  std::uint64_t size_ = 0;   // the file's size in bytes
  unsigned address_size_ = 8, length_size_ = 8;
  std::set<std::uint64_t> checked_;

  // Checks the header at `address` as object_header does, collecting its message areas when
  // `areas` is given.
  void walk_header(std::uint64_t address, const std::string& what,
                   std::vector<MessageArea>* areas) const;

  // Checks the global heap collection at `address` as HDF5 would parse it; throws DataError
  // unless it holds an object `index` of `length` bytes.
  void heap_object(std::uint64_t address, std::uint32_t index, std::uint64_t length,
                   const std::string& what) const;

  // Reads n bytes at a physical offset, as HDF5's sec2 driver does: zeros past the end of the
  // file. False when the file cannot be read.
  bool read_physical(std::uint64_t offset, std::size_t n, std::vector<unsigned char>& out) const;
  void read(std::uint64_t address, std::size_t n, std::vector<unsigned char>& out) const;

  // Superblock versions 0 to 3: sizes of addresses and lengths, the end of the address space
  // and the root group's object header.
  bool read_superblock();

  // HDF5's checksum of metadata: lookup3 over all but the last 4 bytes, which hold it.
  static bool checksum_matches(const std::vector<unsigned char>& image);

  // Appends the continuation messages among the messages in [p, end) of an object header
  // chunk; stops where HDF5 would find the messages malformed (it then refuses the header).
  void continuations(const unsigned char* p, const unsigned char* end, int version,
                     bool creation_order, std::vector<Chunk>& out) const;
};

}  // namespace layercache::detail
