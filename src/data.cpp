// Data sets, IDX and CSV readers, batching, splits, standardization and one-hot encoding
// (see include/layercache/data.hpp and docs/data.md).
//
// A file that starts with the gzip magic bytes is decompressed with zlib's inflate; any other
// file is read as it is. A gzip file must be complete gzip members and nothing else, so a
// cut-off trailer or data after the last member is an error rather than silently ignored.
// A file header is never trusted with memory: the payload buffer grows only as bytes
// actually arrive, so a header claiming 2^31 images fails as soon as the data ends.
#include "layercache/data.hpp"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <string_view>
#include <sys/stat.h>

#include "batch_gather.hpp"

namespace layercache {
namespace {

// ---------------------------------------------------------------------------------------
// Reading bytes through zlib.

/// An open file, decompressed when it is gzip data and read as it is otherwise; closes itself.
///
/// Gzip data must be one or more complete gzip members, back to back, up to the end of the
/// file. inflate checks each member's CRC-32 and length against the decompressed data when it
/// reads the member's 8-byte trailer, so a member counts as complete only once its trailer
/// has been read and checked.
class GzReader {
 public:
  explicit GzReader(const std::string& path) : path_(path), buffer_(std::size_t{1} << 17) {
    errno = 0;
    file_.reset(std::fopen(path.c_str(), "rb"));
    if (file_ == nullptr) {
      throw IoError(std::string("cannot open for reading: ") +
                        (errno != 0 ? std::strerror(errno) : "out of memory"),
                    path);
    }
    refill();
    gzip_ = starts_a_member();
    if (gzip_) {
      // 16 + 15: a gzip wrapper (header and trailer checked) around a 32 KiB window.
      if (inflateInit2(&stream_, 16 + 15) != Z_OK) throw std::bad_alloc();
      inflating_ = true;
    }
  }
  ~GzReader() {
    if (inflating_) inflateEnd(&stream_);
  }
  GzReader(const GzReader&) = delete;
  GzReader& operator=(const GzReader&) = delete;

  /// Reads up to n bytes into buf; returns fewer only when the data ends. Throws DataError
  /// for corrupt gzip data or data after the last gzip member, and IoError for a failing read.
  std::size_t read(void* buf, std::size_t n) {
    auto* out = static_cast<unsigned char*>(buf);
    return gzip_ ? inflate_into(out, n) : copy_into(out, n);
  }

  /// Why the data ended early: empty for a plain end of file, or a note that the gzip
  /// stream itself is cut off.
  std::string end_note() const {
    if (!cut_off_) return {};
    return " (the gzip stream is cut off: the file ends before the CRC-32 and length that close "
           "its last gzip member)";
  }

  /// Throws DataError when the data ended because the gzip stream is cut off; call once
  /// read has returned fewer bytes than asked for.
  void check_end() const {
    const std::string note = end_note();
    if (!note.empty()) throw DataError("truncated file" + note, path_);
  }

 private:
  /// Plain data: the buffered bytes first, then straight from the file.
  std::size_t copy_into(unsigned char* out, std::size_t n) {
    const std::size_t buffered = std::min<std::size_t>(n, stream_.avail_in);
    if (buffered > 0) std::memcpy(out, stream_.next_in, buffered);
    stream_.next_in += buffered;
    stream_.avail_in -= static_cast<uInt>(buffered);
    return buffered + read_file(out + buffered, n - buffered);
  }

  std::size_t inflate_into(unsigned char* out, std::size_t n) {
    std::size_t got = 0;
    while (got < n) {
      if (stream_.avail_in == 0 && refill() == 0) {
        cut_off_ = !member_done_;
        break;
      }
      if (member_done_) next_member();
      const auto chunk = static_cast<uInt>(std::min<std::size_t>(n - got, 1u << 30));
      stream_.next_out = out + got;
      stream_.avail_out = chunk;
      const int r = inflate(&stream_, Z_NO_FLUSH);
      got += chunk - stream_.avail_out;
      if (r == Z_STREAM_END) {
        member_done_ = true;  // its CRC-32 and length matched
      } else if (r == Z_MEM_ERROR) {
        throw std::bad_alloc();
      } else if (r != Z_OK && r != Z_BUF_ERROR) {  // Z_BUF_ERROR: inflate needs more input
        throw DataError(std::string("corrupt gzip data: ") +
                            (stream_.msg != nullptr ? stream_.msg : "unknown error"),
                        path_);
      }
    }
    return got;
  }

  /// After a complete member, anything that follows must be another gzip member.
  void next_member() {
    if (stream_.avail_in < 2) refill();
    if (!starts_a_member()) {
      throw DataError("unexpected data after the gzip stream, at byte " +
                          std::to_string(file_offset_ - stream_.avail_in) +
                          ": expected the end of the file or another gzip member",
                      path_);
    }
    inflateReset(&stream_);
    member_done_ = false;
  }

  bool starts_a_member() const {
    return stream_.avail_in >= 2 && stream_.next_in[0] == 0x1f && stream_.next_in[1] == 0x8b;
  }

  /// Moves the unread input to the front of the buffer and tops it up from the file;
  /// returns the number of buffered input bytes (0 only at the end of the file).
  std::size_t refill() {
    if (stream_.avail_in > 0) std::memmove(buffer_.data(), stream_.next_in, stream_.avail_in);
    stream_.next_in = buffer_.data();
    const std::size_t got = read_file(buffer_.data() + stream_.avail_in,
                                      buffer_.size() - stream_.avail_in);
    file_offset_ += got;
    stream_.avail_in += static_cast<uInt>(got);
    return stream_.avail_in;
  }

  std::size_t read_file(unsigned char* out, std::size_t n) {
    const std::size_t got = std::fread(out, 1, n, file_.get());
    if (got < n && std::ferror(file_.get())) {
      throw IoError(std::string("read failed: ") + std::strerror(errno), path_);
    }
    return got;
  }

  struct FileCloser {
    void operator()(std::FILE* file) const { std::fclose(file); }
  };

  std::string path_;
  std::unique_ptr<std::FILE, FileCloser> file_;
  std::vector<unsigned char> buffer_;  // input not yet used: stream_.next_in, .avail_in
  std::uint64_t file_offset_ = 0;      // bytes read from the file into buffer_
  z_stream stream_{};
  bool gzip_ = false;         // the file starts with the gzip magic bytes
  bool inflating_ = false;    // stream_ holds inflate state to free
  bool member_done_ = false;  // inflate finished a member and checked its trailer
  bool cut_off_ = false;      // the file ended inside a gzip member
};

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

// ---------------------------------------------------------------------------------------
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

// ---------------------------------------------------------------------------------------
// CSV.

/// The whole (decompressed) file as text.
std::string read_text(const std::string& path) {
  GzReader in(path);
  std::string text;
  constexpr std::size_t chunk = std::size_t{1} << 20;
  for (;;) {
    const std::size_t old = text.size();
    text.resize(old + chunk);
    const std::size_t got = in.read(text.data() + old, chunk);
    text.resize(old + got);
    if (got < chunk) break;
  }
  in.check_end();
  return text;
}

std::string_view trim(std::string_view s) {
  const auto blank = [](char c) { return c == ' ' || c == '\t'; };
  while (!s.empty() && blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && blank(s.back())) s.remove_suffix(1);
  return s;
}

/// Where a CSV field is, for messages: "line 4, column 3 (index 2)".
std::string csv_place(std::size_t line, std::size_t column) {
  return "line " + std::to_string(line) + ", column " + std::to_string(column + 1) +
         " (index " + std::to_string(column) + ")";
}

/// The field parsed as a finite number of type T; DataError naming the place otherwise.
template <class T>
T parse_number(std::string_view field, const std::string& path, std::size_t line,
               std::size_t column) {
  const std::string_view text = trim(field);
  if (text.empty()) throw DataError(csv_place(line, column) + ": expected a number, found an empty field", path);
  std::string_view digits = text;
  if (digits.size() > 1 && digits.front() == '+' && digits[1] != '-') digits.remove_prefix(1);
  double value = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec == std::errc::result_out_of_range) {
    throw DataError(csv_place(line, column) + ": the number \"" + std::string(text) +
                        "\" is out of range",
                    path);
  }
  if (ec != std::errc() || end != digits.data() + digits.size()) {
    throw DataError(csv_place(line, column) + ": expected a number, found \"" +
                        std::string(text) + "\"",
                    path);
  }
  const T converted = static_cast<T>(value);
  if (!std::isfinite(converted)) {
    throw DataError(csv_place(line, column) + ": expected a finite number, found \"" +
                        std::string(text) + "\"",
                    path);
  }
  return converted;
}

/// The field parsed as a class label (a non-negative integer, "3" or "3.0").
arma::uword parse_label(std::string_view field, const std::string& path, std::size_t line,
                        std::size_t column) {
  double value = -1;
  try {
    value = parse_number<double>(field, path, line, column);
  } catch (const DataError&) {
    value = -1;  // reported below with the label wording
  }
  if (value < 0 || value != std::floor(value) || value > 9007199254740992.0) {
    throw DataError(csv_place(line, column) +
                        ": expected a label (a non-negative integer), found \"" +
                        std::string(trim(field)) + "\"",
                    path);
  }
  return static_cast<arma::uword>(value);
}

/// Splits `line` at `delimiter` into `fields` (reused between lines).
void split_fields(std::string_view line, char delimiter, std::vector<std::string_view>& fields) {
  fields.clear();
  for (;;) {
    const std::size_t at = line.find(delimiter);
    fields.push_back(line.substr(0, at));
    if (at == std::string_view::npos) return;
    line.remove_prefix(at + 1);
  }
}

void check_csv_options(const CsvOptions& options, const std::string& path) {
  if (options.label_column < -1) {
    throw ConfigError("CsvOptions::label_column must be -1 (no labels) or a 0-based column "
                      "index, found " + std::to_string(options.label_column),
                      path);
  }
  if (options.label_column >= 0 && !options.target_columns.empty()) {
    throw ConfigError("CsvOptions: a data set holds labels or targets, not both; set either "
                      "label_column or target_columns",
                      path);
  }
  auto sorted = options.target_columns;
  std::sort(sorted.begin(), sorted.end());
  const auto repeat = std::adjacent_find(sorted.begin(), sorted.end());
  if (repeat != sorted.end()) {
    throw ConfigError("CsvOptions::target_columns names column index " + std::to_string(*repeat) +
                          " twice",
                      path);
  }
}

// What a CSV column holds.
enum class ColumnRole { feature, label, target };

// ---------------------------------------------------------------------------------------
// Dataset helpers.

/// Throws DataError when labels or targets do not have one entry per sample (O(1)).
template <class T>
void check_counts(const Dataset<T>& data) {
  const std::size_t n = data.size();
  if (data.has_labels() && data.labels.n_elem != n) {
    throw DataError("expected one label per sample (" + std::to_string(n) + "), found " +
                    std::to_string(data.labels.n_elem) + " labels");
  }
  if (data.has_targets() && data.targets.n_cols != n) {
    throw DataError("expected one target column per sample (" + std::to_string(n) +
                    "), found " + std::to_string(data.targets.n_cols) + " columns");
  }
}

/// Copies the columns src[:, at[j]] into dst[:, j] for every j in [first, last); dst is
/// already sized.
template <class E>
void copy_columns(const arma::Mat<E>& src, const arma::uword* at, std::size_t first,
                  std::size_t last, arma::Mat<E>& dst) noexcept {
  for (std::size_t j = first; j < last; ++j)
    std::copy_n(src.colptr(at[j]), src.n_rows, dst.colptr(j));
}

/// Throws DataError unless every indices[first..first+count) is below n.
void check_indices(const arma::uvec& indices, std::size_t first, std::size_t count,
                   std::size_t n, const char* what) {
  for (std::size_t j = first; j < first + count; ++j) {
    if (indices[j] >= n) {
      throw DataError(std::string(what) + " position " + std::to_string(j) + " holds sample index " +
                      std::to_string(indices[j]) + ", but the data set has " + std::to_string(n) +
                      " samples");
    }
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Dataset.

template <class T>
Dataset<T> Dataset<T>::subset(const arma::uvec& indices) const {
  check_counts(*this);
  check_indices(indices, 0, indices.n_elem, size(), "subset index");
  Dataset out;
  out.shape = shape;
  out.n_classes = n_classes;
  const std::size_t n = indices.n_elem;
  out.x.set_size(x.n_rows, n);
  copy_columns(x, indices.memptr(), 0, n, out.x);
  if (has_labels()) out.labels = labels.elem(indices);
  if (has_targets()) {
    out.targets.set_size(targets.n_rows, n);
    copy_columns(targets, indices.memptr(), 0, n, out.targets);
  }
  return out;
}

template <class T>
void Dataset<T>::check() const {
  if (x.n_rows != shape.size() && !(x.is_empty() && shape.rank() == 0)) {
    throw ShapeError("x has " + std::to_string(x.n_rows) + " rows, but the sample shape " +
                     shape.str() + " has " + std::to_string(shape.size()) + " elements");
  }
  check_counts(*this);
  if (has_labels() && has_targets()) {
    throw DataError("a data set holds labels or targets, not both; found " +
                    std::to_string(labels.n_elem) + " labels and " +
                    std::to_string(targets.n_rows) + " × " + std::to_string(targets.n_cols) +
                    " targets");
  }
  for (arma::uword i = 0; i < labels.n_elem; ++i) {
    if (labels[i] >= n_classes) {
      throw DataError("label " + std::to_string(labels[i]) + " of sample " + std::to_string(i) +
                      " is out of range: expected labels below n_classes = " +
                      std::to_string(n_classes));
    }
  }
}

// ---------------------------------------------------------------------------------------
// IDX.

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

// ---------------------------------------------------------------------------------------
// CSV.

template <class T>
Dataset<T> read_csv(const std::string& path, const CsvOptions& options) {
  check_csv_options(options, path);
  const std::string text = read_text(path);

  std::vector<ColumnRole> roles;         // (n_columns)
  std::vector<std::size_t> target_slot;  // (n_columns): position in the targets column
  std::vector<T> features;               // n × n_features, sample after sample
  std::vector<T> targets;                // n × n_targets, sample after sample
  std::vector<arma::uword> labels;       // (n)
  std::vector<std::size_t> label_lines;  // (n): line of each label, for messages
  std::vector<std::string_view> fields;  // reused for every line
  std::vector<T> row_targets(options.target_columns.size());
  std::size_t first_data_line = 0;
  bool header_pending = options.header;

  std::string_view rest = text;
  for (std::size_t line = 1; !rest.empty(); ++line) {
    const std::size_t newline = rest.find('\n');
    std::string_view current = rest.substr(0, newline);
    rest.remove_prefix(newline == std::string_view::npos ? rest.size() : newline + 1);
    if (!current.empty() && current.back() == '\r') current.remove_suffix(1);
    if (trim(current).empty()) continue;
    if (header_pending) {
      header_pending = false;
      continue;
    }
    split_fields(current, options.delimiter, fields);

    if (roles.empty()) {  // the first data row fixes the columns
      first_data_line = line;
      roles.assign(fields.size(), ColumnRole::feature);
      target_slot.assign(fields.size(), 0);
      if (options.label_column >= 0) {
        const auto column = static_cast<std::size_t>(options.label_column);
        if (column >= fields.size()) {
          throw ConfigError("CsvOptions::label_column is " + std::to_string(column) +
                                ", but line " + std::to_string(line) + " has only " +
                                std::to_string(fields.size()) + " columns (indices 0 to " +
                                std::to_string(fields.size() - 1) + ")",
                            path);
        }
        roles[column] = ColumnRole::label;
      }
      for (std::size_t k = 0; k < options.target_columns.size(); ++k) {
        const std::size_t column = options.target_columns[k];
        if (column >= fields.size()) {
          throw ConfigError("CsvOptions::target_columns names column index " +
                                std::to_string(column) + ", but line " + std::to_string(line) +
                                " has only " + std::to_string(fields.size()) + " columns",
                            path);
        }
        roles[column] = ColumnRole::target;
        target_slot[column] = k;
      }
      if (std::count(roles.begin(), roles.end(), ColumnRole::feature) == 0) {
        throw ConfigError("no feature columns: every column of line " + std::to_string(line) +
                              " is a label or target column",
                          path);
      }
    } else if (fields.size() != roles.size()) {
      throw DataError("ragged row: line " + std::to_string(line) + " has " +
                          std::to_string(fields.size()) + " fields, expected " +
                          std::to_string(roles.size()) + " as on line " +
                          std::to_string(first_data_line),
                      path);
    }

    for (std::size_t column = 0; column < fields.size(); ++column) {
      switch (roles[column]) {
        case ColumnRole::feature:
          features.push_back(parse_number<T>(fields[column], path, line, column));
          break;
        case ColumnRole::label:
          labels.push_back(parse_label(fields[column], path, line, column));
          label_lines.push_back(line);
          break;
        case ColumnRole::target:
          row_targets[target_slot[column]] = parse_number<T>(fields[column], path, line, column);
          break;
      }
    }
    targets.insert(targets.end(), row_targets.begin(), row_targets.end());
  }
  if (roles.empty()) throw DataError("expected at least one data row, found none", path);

  const std::size_t n_features = static_cast<std::size_t>(
      std::count(roles.begin(), roles.end(), ColumnRole::feature));
  const std::size_t n = features.size() / n_features;
  Dataset<T> data;
  data.x = arma::Mat<T>(features.data(), n_features, n);
  if (options.shape.rank() == 0) {
    data.shape = Shape{n_features};
  } else if (options.shape.size() != n_features) {
    throw ShapeError("CsvOptions::shape " + options.shape.str() + " has " +
                         std::to_string(options.shape.size()) + " elements, but the file has " +
                         std::to_string(n_features) + " feature columns",
                     path);
  } else {
    data.shape = options.shape;
  }
  if (!options.target_columns.empty())
    data.targets = arma::Mat<T>(targets.data(), options.target_columns.size(), n);
  if (options.label_column >= 0) {
    data.labels = arma::uvec(labels);
    if (options.n_classes == 0) {
      data.n_classes = static_cast<std::size_t>(data.labels.max()) + 1;
    } else {
      for (std::size_t i = 0; i < labels.size(); ++i) {
        if (labels[i] >= options.n_classes) {
          throw DataError(csv_place(label_lines[i], static_cast<std::size_t>(options.label_column)) +
                              ": label " + std::to_string(labels[i]) + " of sample " +
                              std::to_string(i) + " is out of range: expected labels below " +
                              "n_classes = " + std::to_string(options.n_classes),
                          path);
        }
      }
      data.n_classes = options.n_classes;
    }
  }
  return data;
}

// ---------------------------------------------------------------------------------------
// Shuffling and batches.

void shuffle(arma::uvec& indices, Rng& rng) {
  for (arma::uword i = indices.n_elem; i > 1; --i) {
    const auto j = static_cast<arma::uword>(rng.below(i));
    std::swap(indices[i - 1], indices[j]);
  }
}

arma::uvec shuffled_indices(std::size_t n, Rng& rng) {
  arma::uvec indices(n);
  for (std::size_t i = 0; i < n; ++i) indices[i] = i;
  shuffle(indices, rng);
  return indices;
}

BatchPlan batches(std::size_t n, std::size_t batch_size, bool drop_last, Rng* rng) {
  if (batch_size == 0) throw ConfigError("batch_size must be positive, found 0");
  BatchPlan plan;
  plan.batch_size = batch_size;
  if (rng != nullptr) {
    plan.order = shuffled_indices(n, *rng);
  } else {
    plan.order.set_size(n);
    for (std::size_t i = 0; i < n; ++i) plan.order[i] = i;
  }
  const std::size_t n_batches = drop_last ? n / batch_size : (n + batch_size - 1) / batch_size;
  plan.ranges.reserve(n_batches);
  for (std::size_t b = 0; b < n_batches; ++b)
    plan.ranges.push_back({b * batch_size, std::min(n, (b + 1) * batch_size)});
  return plan;
}

template <class T>
void detail::prepare_batch(const Dataset<T>& data, const arma::uvec& order, std::size_t begin,
                           std::size_t end, arma::Mat<T>& x_out, arma::uvec& labels_out,
                           arma::Mat<T>& targets_out) {
  if (begin > end || end > order.n_elem) {
    throw ConfigError("batch range [" + std::to_string(begin) + ", " + std::to_string(end) +
                      ") is outside the order of " + std::to_string(order.n_elem) +
                      " positions");
  }
  check_counts(data);
  const std::size_t count = end - begin;
  check_indices(order, begin, count, data.size(), "order");  // before any buffer changes

  x_out.set_size(data.x.n_rows, count);
  if (data.has_labels())
    labels_out.set_size(count);
  else
    labels_out.reset();
  if (data.has_targets())
    targets_out.set_size(data.targets.n_rows, count);
  else
    targets_out.reset();
}

template <class T>
void detail::fill_batch(const Dataset<T>& data, const arma::uvec& order, std::size_t begin,
                        std::size_t first, std::size_t last, arma::Mat<T>& x_out,
                        arma::uvec& labels_out, arma::Mat<T>& targets_out) noexcept {
  const arma::uword* at = order.memptr() + begin;
  copy_columns(data.x, at, first, last, x_out);
  if (data.has_labels())
    for (std::size_t j = first; j < last; ++j) labels_out[j] = data.labels[at[j]];
  if (data.has_targets()) copy_columns(data.targets, at, first, last, targets_out);
}

template <class T>
void copy_batch(const Dataset<T>& data, const arma::uvec& order, std::size_t begin,
                std::size_t end, arma::Mat<T>& x_out, arma::uvec& labels_out,
                arma::Mat<T>& targets_out) {
  detail::prepare_batch(data, order, begin, end, x_out, labels_out, targets_out);
  detail::fill_batch(data, order, begin, 0, end - begin, x_out, labels_out, targets_out);
}

// ---------------------------------------------------------------------------------------
// Splits, standardization, one-hot.

template <class T>
std::pair<Dataset<T>, Dataset<T>> train_validation_split(const Dataset<T>& data,
                                                         double validation_fraction, Rng& rng) {
  if (!(validation_fraction >= 0.0 && validation_fraction <= 1.0)) {
    throw ConfigError("validation_fraction must be in [0, 1], found " +
                      std::to_string(validation_fraction));
  }
  check_counts(data);
  const std::size_t n = data.size();
  const auto n_validation = std::min(
      n, static_cast<std::size_t>(std::floor(validation_fraction * static_cast<double>(n) + 0.5)));
  const arma::uvec order = shuffled_indices(n, rng);
  arma::uvec validation(n_validation);
  arma::uvec train(n - n_validation);
  std::copy_n(order.memptr(), n_validation, validation.memptr());
  std::copy_n(order.memptr() + n_validation, n - n_validation, train.memptr());
  std::sort(validation.begin(), validation.end());
  std::sort(train.begin(), train.end());
  return {data.subset(train), data.subset(validation)};
}

template <class T>
Standardizer<T> Standardizer<T>::fit(const arma::Mat<T>& x) {
  const std::size_t n_features = x.n_rows;
  const std::size_t n = x.n_cols;
  if (n == 0) throw DataError("cannot fit a standardizer on data without samples");
  std::vector<double> sum(n_features, 0.0);
  std::vector<char> constant(n_features, 1);
  for (std::size_t j = 0; j < n; ++j) {
    const T* column = x.colptr(j);
    for (std::size_t i = 0; i < n_features; ++i) {
      if (!std::isfinite(column[i])) {
        throw DataError("feature " + std::to_string(i) + " of sample " + std::to_string(j) +
                        " is not finite (" + std::to_string(column[i]) + ")");
      }
      sum[i] += column[i];
      if (column[i] != x(i, 0)) constant[i] = 0;
    }
  }
  std::vector<double> squares(n_features, 0.0);
  for (std::size_t j = 0; j < n; ++j) {
    const T* column = x.colptr(j);
    for (std::size_t i = 0; i < n_features; ++i) {
      const double d = column[i] - sum[i] / static_cast<double>(n);
      squares[i] += d * d;
    }
  }
  Standardizer out;
  out.mean.set_size(n_features);
  out.scale.set_size(n_features);
  for (std::size_t i = 0; i < n_features; ++i) {
    // A constant feature keeps its exact value as mean (so it becomes exactly 0) and scale 1.
    out.mean[i] = constant[i] ? x(i, 0) : static_cast<T>(sum[i] / static_cast<double>(n));
    out.scale[i] = constant[i] ? T(1) : static_cast<T>(std::sqrt(squares[i] / static_cast<double>(n)));
  }
  return out;
}

template <class T>
void Standardizer<T>::apply(arma::Mat<T>& x) const {
  if (x.n_rows != mean.n_elem) {
    throw ShapeError("the standardizer was fitted on " + std::to_string(mean.n_elem) +
                     " features, got data with " + std::to_string(x.n_rows) + " rows");
  }
  for (std::size_t j = 0; j < x.n_cols; ++j) {
    T* column = x.colptr(j);
    for (std::size_t i = 0; i < x.n_rows; ++i) column[i] = (column[i] - mean[i]) / scale[i];
  }
}

template <class T>
arma::Mat<T> Standardizer<T>::transform(const arma::Mat<T>& x) const {
  arma::Mat<T> out = x;
  apply(out);
  return out;
}

template <class T>
arma::Mat<T> one_hot(const arma::uvec& labels, std::size_t n_classes) {
  for (arma::uword i = 0; i < labels.n_elem; ++i) {
    if (labels[i] >= n_classes) {
      throw DataError("label " + std::to_string(labels[i]) + " of sample " + std::to_string(i) +
                      " is out of range: expected labels below n_classes = " +
                      std::to_string(n_classes));
    }
  }
  arma::Mat<T> out(n_classes, labels.n_elem, arma::fill::zeros);
  for (arma::uword i = 0; i < labels.n_elem; ++i) out(labels[i], i) = T(1);
  return out;
}

// ---------------------------------------------------------------------------------------
// Explicit instantiations for float and double.

template struct Dataset<float>;
template struct Dataset<double>;
template struct Standardizer<float>;
template struct Standardizer<double>;
template arma::Mat<float> read_idx_images<float>(const std::string&);
template arma::Mat<double> read_idx_images<double>(const std::string&);
template Dataset<float> read_idx<float>(const std::string&, const std::string&, std::size_t);
template Dataset<double> read_idx<double>(const std::string&, const std::string&, std::size_t);
template Dataset<float> load_fashion_mnist<float>(const std::string&, const std::string&);
template Dataset<double> load_fashion_mnist<double>(const std::string&, const std::string&);
template Dataset<float> read_csv<float>(const std::string&, const CsvOptions&);
template Dataset<double> read_csv<double>(const std::string&, const CsvOptions&);
template void detail::prepare_batch<float>(const Dataset<float>&, const arma::uvec&, std::size_t,
                                           std::size_t, arma::Mat<float>&, arma::uvec&,
                                           arma::Mat<float>&);
template void detail::prepare_batch<double>(const Dataset<double>&, const arma::uvec&,
                                            std::size_t, std::size_t, arma::Mat<double>&,
                                            arma::uvec&, arma::Mat<double>&);
template void detail::fill_batch<float>(const Dataset<float>&, const arma::uvec&, std::size_t,
                                        std::size_t, std::size_t, arma::Mat<float>&,
                                        arma::uvec&, arma::Mat<float>&) noexcept;
template void detail::fill_batch<double>(const Dataset<double>&, const arma::uvec&, std::size_t,
                                         std::size_t, std::size_t, arma::Mat<double>&,
                                         arma::uvec&, arma::Mat<double>&) noexcept;
template void copy_batch<float>(const Dataset<float>&, const arma::uvec&, std::size_t,
                                std::size_t, arma::Mat<float>&, arma::uvec&, arma::Mat<float>&);
template void copy_batch<double>(const Dataset<double>&, const arma::uvec&, std::size_t,
                                 std::size_t, arma::Mat<double>&, arma::uvec&,
                                 arma::Mat<double>&);
template std::pair<Dataset<float>, Dataset<float>> train_validation_split<float>(
    const Dataset<float>&, double, Rng&);
template std::pair<Dataset<double>, Dataset<double>> train_validation_split<double>(
    const Dataset<double>&, double, Rng&);
template arma::Mat<float> one_hot<float>(const arma::uvec&, std::size_t);
template arma::Mat<double> one_hot<double>(const arma::uvec&, std::size_t);

}  // namespace layercache
