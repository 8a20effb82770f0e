// IDX files (MNIST, Fashion-MNIST), plain or gzip-compressed: images and labels as data sets.
//
// A file header is never trusted with memory: the payload buffer grows only as bytes
// actually arrive, so a header claiming 2^31 images fails as soon as the data ends.
#include "layercache/data.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "gzip_reader.hpp"

namespace layercache {
namespace {

using detail::GzReader;

/// Reads exactly `claimed` bytes of payload, growing the buffer only as data arrives, then
/// checks that nothing follows. `claim` describes the header's promise for messages.
std::vector<unsigned char> read_payload(GzReader& in, const std::string& path,
                                        std::uint64_t claimed, const std::string& claim) {
  constexpr std::size_t chunk = std::size_t{1} << 20;
  std::vector<unsigned char> buf;
  std::uint64_t size = 0;
  while (size < claimed) {
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(claimed - size, chunk));
    if (size + want > buf.capacity()) {
      // Double the capacity, but never past what the header claims.
      const std::uint64_t grown = std::max<std::uint64_t>(2 * buf.capacity(), size + want);
      buf.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(grown, claimed)));
    }
    buf.resize(static_cast<std::size_t>(size) + want);
    const std::size_t got = in.read(buf.data() + size, want);
    size += got;
    if (got < want) {
      throw DataError("truncated file: the header claims " + claim + " = " +
                          std::to_string(claimed) + " bytes of data, but the file holds only " +
                          std::to_string(size) + in.end_note(),
                      path);
    }
  }
  unsigned char extra = 0;
  if (in.read(&extra, 1) != 0) {
    throw DataError("the file holds more data than its header claims (" + claim + " = " +
                        std::to_string(claimed) + " bytes); the header does not match the data",
                    path);
  }
  in.check_end();  // a gzip file must still hold its CRC-32 and length after the data
  return buf;
}

// IDX format: magic (0, 0, data type, rank), rank big-endian uint32 dimensions, then the
// data in row-major order.

constexpr unsigned char idx_unsigned_byte = 0x08;

const char* idx_type_name(unsigned char type) {
  switch (type) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "16-bit integer";
    case 0x0C: return "32-bit integer";
    case 0x0D: return "float";
    case 0x0E: return "double";
    default: return "not an IDX type";
  }
}

std::string hex(std::uint64_t value, int digits) {
  char text[32];
  std::snprintf(text, sizeof text, "0x%0*llX", digits, static_cast<unsigned long long>(value));
  return text;
}

/// Reads and checks an IDX header of unsigned bytes with `rank` dimensions; returns them.
std::vector<std::uint64_t> read_idx_header(GzReader& in, const std::string& path,
                                           unsigned rank, const char* layout) {
  const std::uint32_t expected_magic = idx_unsigned_byte << 8 | rank;
  unsigned char magic[4];
  const std::size_t got = in.read(magic, 4);
  if (got < 4) {
    throw DataError("truncated header: expected a 4-byte IDX magic number (" +
                        hex(expected_magic, 8) + "), found " + std::to_string(got) + " bytes" +
                        in.end_note(),
                    path);
  }
  const std::uint32_t found_magic = std::uint32_t{magic[0]} << 24 | std::uint32_t{magic[1]} << 16 |
                                    std::uint32_t{magic[2]} << 8 | magic[3];
  if (magic[0] != 0 || magic[1] != 0) {
    throw DataError("not an IDX file: expected magic number " + hex(expected_magic, 8) + " (" +
                        layout + "), found " + hex(found_magic, 8),
                    path);
  }
  if (magic[2] != idx_unsigned_byte) {
    throw DataError("wrong IDX data type: expected " + hex(idx_unsigned_byte, 2) +
                        " (unsigned byte), found " + hex(magic[2], 2) + " (" +
                        idx_type_name(magic[2]) + ")",
                    path);
  }
  if (magic[3] != rank) {
    throw DataError("wrong IDX rank: expected " + std::to_string(rank) + " dimension(s) (" +
                        layout + ", magic " + hex(expected_magic, 8) + "), found " +
                        std::to_string(magic[3]) + " (magic " + hex(found_magic, 8) + ")",
                    path);
  }
  std::vector<std::uint64_t> dims(rank);
  for (unsigned i = 0; i < rank; ++i) {
    unsigned char b[4];
    const std::size_t n = in.read(b, 4);
    if (n < 4) {
      throw DataError("truncated header: expected " + std::to_string(4 + 4 * rank) +
                          " header bytes, found " + std::to_string(4 + 4 * i + n) +
                          in.end_note(),
                      path);
    }
    dims[i] = std::uint64_t{b[0]} << 24 | std::uint64_t{b[1]} << 16 | std::uint64_t{b[2]} << 8 |
              b[3];
  }
  return dims;
}

/// The number of classes: `requested`, or max label + 1 when it is 0; checks every label.
std::size_t checked_n_classes(const arma::uvec& labels, std::size_t requested,
                              const std::string& path) {
  if (requested > max_classes)
    throw ConfigError("n_classes is " + std::to_string(requested) + ", more than max_classes = " +
                          std::to_string(max_classes),
                      path);
  if (requested == 0) return labels.is_empty() ? 0 : static_cast<std::size_t>(labels.max()) + 1;
  for (arma::uword i = 0; i < labels.n_elem; ++i) {
    if (labels[i] >= requested) {
      throw DataError("label " + std::to_string(labels[i]) + " of sample " + std::to_string(i) +
                          " is out of range: expected labels below n_classes = " +
                          std::to_string(requested),
                      path);
    }
  }
  return requested;
}

/// An opened IDX images file whose header has been read.
struct IdxImages {
  std::uint64_t n = 0;
  std::uint64_t rows = 0;
  std::uint64_t cols = 0;
};

IdxImages read_images_header(GzReader& in, const std::string& path) {
  const auto dims = read_idx_header(in, path, 3, "unsigned-byte images: count × rows × columns");
  if (dims[1] == 0 || dims[2] == 0) {
    throw DataError("expected positive image dimensions, found " + std::to_string(dims[1]) +
                        " × " + std::to_string(dims[2]),
                    path);
  }
  return {dims[0], dims[1], dims[2]};
}

/// Reads the pixel payload and converts it to (rows*cols × n) in [0, 1], each image
/// transposed from IDX's row-major order to Armadillo's column-major order.
template <class T>
arma::Mat<T> read_images_payload(GzReader& in, const std::string& path, const IdxImages& h) {
  // At most 2^32 each, so rows*cols fits; the product with n is checked against overflow.
  const std::uint64_t per_image = h.rows * h.cols;
  const std::string claim = std::to_string(h.n) + " images of " + std::to_string(h.rows) +
                            " × " + std::to_string(h.cols) + " pixels";
  if (h.n != 0 && per_image > std::numeric_limits<std::uint64_t>::max() / h.n) {
    throw DataError("the header claims " + claim + ", more bytes than any file can hold", path);
  }
  const auto bytes = read_payload(in, path, h.n * per_image, claim);

  T scaled[256];  // exact: 0 → 0 and 255 → 1
  for (int v = 0; v < 256; ++v) scaled[v] = static_cast<T>(v) / static_cast<T>(255);
  arma::Mat<T> images(static_cast<arma::uword>(per_image), static_cast<arma::uword>(h.n));
  for (std::uint64_t i = 0; i < h.n; ++i) {
    const unsigned char* src = bytes.data() + i * per_image;  // (rows × cols), row-major
    T* dst = images.colptr(static_cast<arma::uword>(i));       // (rows × cols), column-major
    for (std::uint64_t r = 0; r < h.rows; ++r)
      for (std::uint64_t c = 0; c < h.cols; ++c) dst[c * h.rows + r] = scaled[src[r * h.cols + c]];
  }
  return images;
}

arma::uvec read_labels_from(GzReader& in, const std::string& path) {
  const auto dims = read_idx_header(in, path, 1, "unsigned-byte labels: count");
  const auto bytes = read_payload(in, path, dims[0], std::to_string(dims[0]) + " labels");
  arma::uvec labels(bytes.size());
  for (std::size_t i = 0; i < bytes.size(); ++i) labels[i] = bytes[i];
  return labels;
}

bool file_exists(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0;
}

/// `base`.gz when it exists, otherwise `base` when it exists; IoError naming both otherwise.
std::string find_gz_or_plain(const std::string& base, const std::string& what) {
  if (file_exists(base + ".gz")) return base + ".gz";
  if (file_exists(base)) return base;
  throw IoError("cannot find " + what + ": tried " + base + ".gz and " + base);
}

}  // namespace

template <class T>
arma::Mat<T> read_idx_images(const std::string& path) {
  GzReader in(path);
  const IdxImages header = read_images_header(in, path);
  return read_images_payload<T>(in, path, header);
}

arma::uvec read_idx_labels(const std::string& path) {
  GzReader in(path);
  return read_labels_from(in, path);
}

template <class T>
Dataset<T> read_idx(const std::string& images_path, const std::string& labels_path,
                    std::size_t n_classes) {
  Dataset<T> data;
  data.labels = read_idx_labels(labels_path);
  GzReader in(images_path);
  const IdxImages header = read_images_header(in, images_path);
  if (header.n != data.labels.n_elem) {
    // Checked before the pixels are read: a mismatch is reported at once.
    throw DataError("the images file holds " + std::to_string(header.n) +
                        " images, but the labels file " + labels_path + " holds " +
                        std::to_string(data.labels.n_elem) + " labels",
                    images_path);
  }
  data.x = read_images_payload<T>(in, images_path, header);
  data.shape = Shape{1, static_cast<std::size_t>(header.rows), static_cast<std::size_t>(header.cols)};
  data.n_classes = checked_n_classes(data.labels, n_classes, labels_path);
  return data;
}

template <class T>
Dataset<T> load_fashion_mnist(const std::string& dir, const std::string& split) {
  std::string prefix;
  if (split == "train") {
    prefix = "train";
  } else if (split == "test" || split == "t10k") {
    prefix = "t10k";
  } else {
    throw ConfigError("unknown Fashion-MNIST split \"" + split +
                      "\"; valid splits: train, test (or t10k)");
  }
  const std::string base = dir.empty() ? prefix : dir + "/" + prefix;
  const std::string images = find_gz_or_plain(base + "-images-idx3-ubyte", split + " images");
  const std::string labels = find_gz_or_plain(base + "-labels-idx1-ubyte", split + " labels");
  return read_idx<T>(images, labels, 10);
}

template arma::Mat<float> read_idx_images<float>(const std::string&);
template arma::Mat<double> read_idx_images<double>(const std::string&);
template Dataset<float> read_idx<float>(const std::string&, const std::string&, std::size_t);
template Dataset<double> read_idx<double>(const std::string&, const std::string&, std::size_t);
template Dataset<float> load_fashion_mnist<float>(const std::string&, const std::string&);
template Dataset<double> load_fashion_mnist<double>(const std::string&, const std::string&);

}  // namespace layercache
