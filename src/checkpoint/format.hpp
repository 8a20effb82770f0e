// Library-internal (not installed): the checkpoint format the reader and writer share
// (docs/checkpoints.md) — the root's attribute values, element types and the CRC-32
// checksums of values and of the structure.
#pragma once

#include <hdf5.h>
#include <zlib.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <string>

#include "layercache/checkpoint.hpp"

namespace layercache::detail {

constexpr const char* format_name = "layercache-checkpoint";
constexpr const char* layout_name = "row-major";
// The attribute holding a CRC-32: of a dataset's bytes, or (on the root) of the structure.
constexpr const char* checksum_name = "crc32";
// Deeper nesting than this is refused on reading (a corrupt file) and so on saving too; a tree
// directly below the root is at depth 1.
constexpr int max_depth = 256;
// The most a compressed dataset may expand: deflate's limit (1032:1). Reading, the datasets
// together may claim at most the file's size in bytes, compressed ones counted at 1/1032.
constexpr double max_compression = 1032;

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
// Checksums (zlib's CRC-32), so that damaged values and names are detected on reading.

inline std::uint32_t crc_update(std::uint32_t crc, const void* data, std::size_t size) {
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

}  // namespace layercache::detail
