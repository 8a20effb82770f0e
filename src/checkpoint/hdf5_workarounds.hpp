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

// Recomputes the checksum of a version 2 or 3 superblock at the start of a file image, which
// HDF5 1.10's H5Fget_file_image leaves stale; does nothing to other images.
void fix_superblock_checksum(std::vector<char>& image);

// The object headers of one open file, each checked before HDF5 loads it.
class HeaderCheck {
 public:
  // The checks for the file `h5` (opened with the sec2 driver); nothing when HDF5's file
  // descriptor or the superblock is not one this understands (HDF5 then reads unchecked).
  static std::optional<HeaderCheck> of(hid_t h5, const std::string& file);

  std::uint64_t root() const noexcept { return root_; }

  // Throws DataError when the object header at `address` (an address as HDF5 gives them,
  // e.g. in H5L_info_t) is damaged so that HDF5 would refuse it and leak.
  void object_header(std::uint64_t address, const std::string& what);

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
