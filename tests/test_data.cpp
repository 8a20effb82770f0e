// Specification of the data module: data sets, IDX and CSV readers, shuffling, batches,
// splits, standardization and one-hot encoding.
#define BOOST_TEST_MODULE data
#include <boost/test/unit_test.hpp>

#include <sys/resource.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <cstdlib>
#include <new>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "layercache/data.hpp"

using namespace layercache;
namespace fs = std::filesystem;

// Counts calls of operator new, to show that a steady-state batch copy allocates nothing.
// (Armadillo allocates its matrices with malloc; those are checked by comparing pointers.)
// The replacements are not inlined: GCC would otherwise warn that free() receives memory
// from operator new.
namespace {
std::size_t new_calls = 0;
}
[[gnu::noinline]] void* operator new(std::size_t size) {
  ++new_calls;
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {

using Bytes = std::vector<unsigned char>;

/// A fresh directory under the system temporary directory, removed at the end.
struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("layercache_test_data_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

void write_plain(const std::string& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

void write_plain(const std::string& path, const std::string& text) {
  write_plain(path, Bytes(text.begin(), text.end()));
}

/// Writes `bytes` as one gzip member; `mode` "wb0" stores them uncompressed.
void write_gzip(const std::string& path, const Bytes& bytes, const char* mode = "wb") {
  gzFile out = gzopen(path.c_str(), mode);
  BOOST_REQUIRE(out != nullptr);
  if (!bytes.empty()) BOOST_REQUIRE(gzwrite(out, bytes.data(), static_cast<unsigned>(bytes.size())) > 0);
  BOOST_REQUIRE(gzclose(out) == Z_OK);
}

Bytes read_plain(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

/// `bytes` as the file write_gzip writes (one gzip member, CRC-32 and length at the end).
Bytes gzip_member(const TempDir& dir, const Bytes& bytes, const char* mode = "wb") {
  write_gzip(dir.file("member.gz"), bytes, mode);
  return read_plain(dir.file("member.gz"));
}

void put_u32(Bytes& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<unsigned char>(v >> shift));
}

/// An IDX images file header claiming n images of rows × cols, followed by `pixels`.
Bytes idx_images(std::uint32_t n, std::uint32_t rows, std::uint32_t cols, const Bytes& pixels) {
  Bytes out = {0, 0, 0x08, 3};
  put_u32(out, n);
  put_u32(out, rows);
  put_u32(out, cols);
  out.insert(out.end(), pixels.begin(), pixels.end());
  return out;
}

/// An IDX labels file header claiming n labels, followed by `labels`.
Bytes idx_labels(std::uint32_t n, const Bytes& labels) {
  Bytes out = {0, 0, 0x08, 1};
  put_u32(out, n);
  out.insert(out.end(), labels.begin(), labels.end());
  return out;
}

/// Three 2 × 3 images; image i has pixel (r, c) = 100 i + 10 r + c (row-major in the file).
Bytes three_images_pixels() {
  Bytes pixels;
  for (int i = 0; i < 3; ++i)
    for (int r = 0; r < 2; ++r)
      for (int c = 0; c < 3; ++c) pixels.push_back(static_cast<unsigned char>(100 * i + 10 * r + c));
  return pixels;
}

/// Three images gzipped as stored (uncompressed) deflate blocks, with one bit of a pixel
/// flipped: still valid deflate data, which only the CRC-32 in the trailer shows to be wrong.
Bytes gzip_images_with_a_flipped_bit(const TempDir& dir) {
  auto compressed = gzip_member(dir, idx_images(3, 2, 3, three_images_pixels()), "wb0");
  compressed[compressed.size() - 8 - 5] ^= 0x10;  // a pixel of the last stored block
  return compressed;
}

/// Runs f and returns the message of the exception of type E it throws (fails otherwise).
template <class E, class F>
std::string message_of(F f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    BOOST_FAIL("expected another exception type, got: " << e.what());
  }
  BOOST_FAIL("expected an exception, none was thrown");
  return {};
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

/// A small labelled data set: 4 features × n samples, x(i, j) = 10 j + i, label j % 3.
Dataset<float> small_dataset(std::size_t n) {
  Dataset<float> data;
  data.shape = Shape{4};
  data.x.set_size(4, n);
  data.labels.set_size(n);
  for (std::size_t j = 0; j < n; ++j) {
    for (std::size_t i = 0; i < 4; ++i) data.x(i, j) = static_cast<float>(10 * j + i);
    data.labels[j] = j % 3;
  }
  data.n_classes = 3;
  return data;
}

bool is_permutation_of_range(const arma::uvec& v, std::size_t n) {
  if (v.n_elem != n) return false;
  std::vector<bool> seen(n, false);
  for (auto i : v) {
    if (i >= n || seen[i]) return false;
    seen[i] = true;
  }
  return true;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Dataset

BOOST_AUTO_TEST_CASE(dataset_size_is_the_number_of_columns) {
  BOOST_TEST(small_dataset(7).size() == 7u);
  BOOST_TEST(Dataset<double>{}.size() == 0u);
}

BOOST_AUTO_TEST_CASE(subset_takes_samples_in_the_given_order) {
  const auto data = small_dataset(5);
  const auto sub = data.subset(arma::uvec{4, 1, 1});
  BOOST_TEST(sub.size() == 3u);
  BOOST_TEST(sub.x(2, 0) == 42.0f);
  BOOST_TEST(sub.x(0, 1) == 10.0f);
  BOOST_TEST(sub.x(0, 2) == 10.0f);
  BOOST_TEST(sub.labels[0] == 1u);
  BOOST_TEST(sub.labels[1] == 1u);
  BOOST_TEST((sub.shape == data.shape));
  BOOST_TEST(sub.n_classes == 3u);
}

BOOST_AUTO_TEST_CASE(subset_rejects_an_index_past_the_end) {
  const auto data = small_dataset(5);
  const auto message = message_of<DataError>([&] { data.subset(arma::uvec{0, 5}); });
  BOOST_TEST(contains(message, "sample index 5"));
}

BOOST_AUTO_TEST_CASE(check_accepts_a_consistent_dataset) {
  BOOST_CHECK_NO_THROW(small_dataset(6).check());
}

BOOST_AUTO_TEST_CASE(check_names_the_sample_whose_label_is_out_of_range) {
  auto data = small_dataset(6);
  data.labels[4] = 3;
  const auto message = message_of<DataError>([&] { data.check(); });
  BOOST_TEST(contains(message, "sample 4"), message);
  BOOST_TEST(contains(message, "label 3"), message);
}

BOOST_AUTO_TEST_CASE(check_rejects_a_label_count_different_from_the_sample_count) {
  auto data = small_dataset(6);
  data.labels.resize(5);
  BOOST_CHECK_THROW(data.check(), DataError);
}

BOOST_AUTO_TEST_CASE(check_rejects_a_shape_that_does_not_match_the_rows) {
  auto data = small_dataset(6);
  data.shape = Shape{5};
  BOOST_CHECK_THROW(data.check(), ShapeError);
}

BOOST_AUTO_TEST_CASE(check_rejects_labels_and_targets_together) {
  auto data = small_dataset(6);
  data.targets.zeros(1, 6);
  BOOST_CHECK_THROW(data.check(), DataError);
}

// ---------------------------------------------------------------------------------------
// IDX

BOOST_AUTO_TEST_CASE(idx_plain_files_round_trip) {
  TempDir dir;
  write_plain(dir.file("images"), idx_images(3, 2, 3, three_images_pixels()));
  write_plain(dir.file("labels"), idx_labels(3, {7, 0, 2}));
  const auto data = read_idx(dir.file("images"), dir.file("labels"));
  BOOST_TEST(data.size() == 3u);
  BOOST_TEST(data.x.n_rows == 6u);
  BOOST_TEST((data.shape == Shape{1, 2, 3}));
  BOOST_TEST(data.labels[0] == 7u);
  BOOST_TEST(data.labels[2] == 2u);
  BOOST_TEST(data.n_classes == 8u);  // max label + 1 when not given
  BOOST_TEST(data.x(0, 2) == 200.0f / 255.0f);
}

BOOST_AUTO_TEST_CASE(idx_gzipped_files_round_trip) {
  TempDir dir;
  write_gzip(dir.file("images.gz"), idx_images(3, 2, 3, three_images_pixels()));
  write_gzip(dir.file("labels.gz"), idx_labels(3, {1, 2, 3}));
  const auto data = read_idx<double>(dir.file("images.gz"), dir.file("labels.gz"), 10);
  BOOST_TEST(data.size() == 3u);
  BOOST_TEST(data.n_classes == 10u);
  BOOST_TEST(data.labels[1] == 2u);
  BOOST_TEST(data.x(5, 1) == 112.0 / 255.0);
}

BOOST_AUTO_TEST_CASE(idx_images_are_stored_column_major_within_each_column) {
  TempDir dir;
  write_plain(dir.file("images"), idx_images(3, 2, 3, three_images_pixels()));
  const arma::fmat x = read_idx_images(dir.file("images"));
  // Pixel (r, c) of image i is at row r + c * rows, like arma::fmat(rows, cols).
  for (int i = 0; i < 3; ++i)
    for (int r = 0; r < 2; ++r)
      for (int c = 0; c < 3; ++c)
        BOOST_TEST(x(r + 2 * c, i) == static_cast<float>(100 * i + 10 * r + c) / 255.0f);
}

BOOST_AUTO_TEST_CASE(idx_pixels_are_scaled_to_exactly_zero_and_one) {
  TempDir dir;
  write_plain(dir.file("images"), idx_images(1, 1, 2, {0, 255}));
  const arma::fmat x = read_idx_images(dir.file("images"));
  BOOST_TEST(x(0, 0) == 0.0f);
  BOOST_TEST(x(1, 0) == 1.0f);
}

BOOST_AUTO_TEST_CASE(idx_missing_file_is_an_io_error) {
  TempDir dir;
  const auto message = message_of<IoError>([&] { read_idx_labels(dir.file("absent")); });
  BOOST_TEST(contains(message, "absent"), message);
}

BOOST_AUTO_TEST_CASE(idx_truncated_plain_payload_is_a_data_error) {
  TempDir dir;
  auto bytes = idx_images(3, 2, 3, three_images_pixels());
  bytes.resize(bytes.size() - 4);
  write_plain(dir.file("images"), bytes);
  const auto message = message_of<DataError>([&] { read_idx_images(dir.file("images")); });
  BOOST_TEST(contains(message, dir.file("images")), message);
  BOOST_TEST(contains(message, "18 bytes"), message);  // expected
  BOOST_TEST(contains(message, "only 14"), message);   // found
}

BOOST_AUTO_TEST_CASE(idx_cut_off_gzip_stream_is_a_data_error) {
  TempDir dir;
  Bytes pixels(3 * 28 * 28);
  for (std::size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<unsigned char>(i * 7919 % 251);
  write_gzip(dir.file("full.gz"), idx_images(3, 28, 28, pixels));
  auto compressed = read_plain(dir.file("full.gz"));
  compressed.resize(compressed.size() / 2);
  write_plain(dir.file("cut.gz"), compressed);
  const auto message = message_of<DataError>([&] { read_idx_images(dir.file("cut.gz")); });
  BOOST_TEST(contains(message, "truncated"), message);
}

BOOST_AUTO_TEST_CASE(idx_gzip_file_whose_trailer_is_cut_short_is_a_data_error_naming_the_file) {
  TempDir dir;
  const auto whole = gzip_member(dir, idx_labels(3, {1, 2, 3}));
  write_plain(dir.file("whole.gz"), whole);
  BOOST_TEST(read_idx_labels(dir.file("whole.gz")).n_elem == 3u);
  for (const int cut : {1, 4, 8}) {  // the 8-byte trailer: CRC-32, then length
    BOOST_TEST_CONTEXT("trailer cut by " << cut << " bytes") {
      const std::string path = dir.file("cut" + std::to_string(cut) + ".gz");
      write_plain(path, Bytes(whole.begin(), whole.end() - cut));
      BOOST_CHECK_EXCEPTION(read_idx_labels(path), DataError, [&](const DataError& e) {
        BOOST_TEST(contains(e.what(), path), e.what());
        BOOST_TEST(contains(e.what(), "cut off"), e.what());
        return true;
      });
    }
  }
}

BOOST_AUTO_TEST_CASE(idx_gzip_file_with_a_corrupt_byte_and_no_trailer_is_a_data_error) {
  TempDir dir;
  auto compressed = gzip_images_with_a_flipped_bit(dir);
  compressed.resize(compressed.size() - 8);
  write_plain(dir.file("images.gz"), compressed);
  const auto message = message_of<DataError>([&] { read_idx_images(dir.file("images.gz")); });
  BOOST_TEST(contains(message, dir.file("images.gz")), message);
}

BOOST_AUTO_TEST_CASE(idx_gzip_file_whose_crc_does_not_match_is_a_data_error) {
  TempDir dir;
  write_plain(dir.file("images.gz"), gzip_images_with_a_flipped_bit(dir));
  const auto message = message_of<DataError>([&] { read_idx_images(dir.file("images.gz")); });
  BOOST_TEST(contains(message, dir.file("images.gz")), message);
  BOOST_TEST(contains(message, "incorrect data check"), message);
}

BOOST_AUTO_TEST_CASE(idx_gzip_file_with_data_after_its_member_is_a_data_error) {
  TempDir dir;
  const auto whole = gzip_member(dir, idx_labels(3, {1, 2, 3}));
  const std::pair<const char*, Bytes> junks[] = {{"text", {'j', 'u', 'n', 'k'}},
                                                 {"a zero byte", {0}},
                                                 {"half a gzip magic number", {0x1f}},
                                                 {"more zeros than a read buffer", Bytes(200000, 0)}};
  for (const auto& [name, junk] : junks) {
    BOOST_TEST_CONTEXT("followed by " << name) {
      const std::string path = dir.file("junk.gz");
      Bytes bytes = whole;
      bytes.insert(bytes.end(), junk.begin(), junk.end());
      write_plain(path, bytes);
      BOOST_CHECK_EXCEPTION(read_idx_labels(path), DataError, [&](const DataError& e) {
        BOOST_TEST(contains(e.what(), path), e.what());
        return true;
      });
    }
  }
}

BOOST_AUTO_TEST_CASE(idx_gzip_file_of_several_complete_members_loads) {
  TempDir dir;
  const auto data = idx_images(3, 2, 3, three_images_pixels());
  const std::size_t half = data.size() / 2;
  Bytes bytes = gzip_member(dir, Bytes(data.begin(), data.begin() + half));
  const Bytes second = gzip_member(dir, Bytes(data.begin() + half, data.end()));
  bytes.insert(bytes.end(), second.begin(), second.end());
  write_plain(dir.file("images.gz"), bytes);
  const arma::fmat x = read_idx_images(dir.file("images.gz"));
  BOOST_TEST(x.n_cols == 3u);
  BOOST_TEST(x(5, 2) == 212.0f / 255.0f);
}

BOOST_AUTO_TEST_CASE(idx_truncated_header_is_a_data_error) {
  TempDir dir;
  auto bytes = idx_images(3, 2, 3, {});
  bytes.resize(9);
  write_plain(dir.file("images"), bytes);
  const auto message = message_of<DataError>([&] { read_idx_images(dir.file("images")); });
  BOOST_TEST(contains(message, "expected 16 header bytes, found 9"), message);
}

BOOST_AUTO_TEST_CASE(idx_empty_file_is_a_data_error) {
  TempDir dir;
  write_plain(dir.file("labels"), Bytes{});
  BOOST_CHECK_THROW(read_idx_labels(dir.file("labels")), DataError);
}

BOOST_AUTO_TEST_CASE(idx_wrong_magic_number_is_a_data_error) {
  TempDir dir;
  auto bytes = idx_labels(3, {1, 2, 3});
  bytes[0] = 0x1f;
  write_plain(dir.file("labels"), bytes);
  const auto message = message_of<DataError>([&] { read_idx_labels(dir.file("labels")); });
  BOOST_TEST(contains(message, "0x00000801"), message);  // expected
  BOOST_TEST(contains(message, "0x1F000801"), message);  // found
}

BOOST_AUTO_TEST_CASE(idx_wrong_data_type_is_a_data_error) {
  TempDir dir;
  auto bytes = idx_images(3, 2, 3, three_images_pixels());
  bytes[2] = 0x0D;  // float
  write_plain(dir.file("images"), bytes);
  const auto message = message_of<DataError>([&] { read_idx_images(dir.file("images")); });
  BOOST_TEST(contains(message, "found 0x0D (float)"), message);
}

BOOST_AUTO_TEST_CASE(idx_labels_file_read_as_images_is_a_data_error) {
  TempDir dir;
  write_plain(dir.file("labels"), idx_labels(3, {1, 2, 3}));
  const auto message = message_of<DataError>([&] { read_idx_images(dir.file("labels")); });
  BOOST_TEST(contains(message, "expected 3 dimension"), message);
}

BOOST_AUTO_TEST_CASE(idx_header_claiming_more_images_than_present_is_a_data_error) {
  TempDir dir;
  write_gzip(dir.file("images.gz"), idx_images(4, 2, 3, three_images_pixels()));
  const auto message = message_of<DataError>([&] { read_idx_images(dir.file("images.gz")); });
  BOOST_TEST(contains(message, "4 images"), message);
  BOOST_TEST(contains(message, "only 18"), message);
}

BOOST_AUTO_TEST_CASE(idx_header_claiming_two_to_the_31_images_fails_fast) {
  TempDir dir;
  write_plain(dir.file("images"), idx_images(1u << 31, 28, 28, three_images_pixels()));
  write_gzip(dir.file("images.gz"), idx_images(1u << 31, 28, 28, three_images_pixels()));
  const auto start = std::chrono::steady_clock::now();
  BOOST_CHECK_THROW(read_idx_images(dir.file("images")), DataError);
  BOOST_CHECK_THROW(read_idx_images(dir.file("images.gz")), DataError);
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  BOOST_TEST(took.count() < 1.0);
}

BOOST_AUTO_TEST_CASE(idx_huge_claim_allocates_no_more_than_the_data_present) {
  // With the address space capped 256 MiB above its current use, a reader that trusted a
  // claim of 2^31 labels (2 GiB) would get std::bad_alloc instead of a DataError.
  TempDir dir;
  write_gzip(dir.file("labels.gz"), idx_labels(1u << 31, Bytes(1000, 1)));
  long pages = 0;
  std::ifstream("/proc/self/statm") >> pages;
  BOOST_REQUIRE(pages > 0);
  rlimit saved{};
  BOOST_REQUIRE(getrlimit(RLIMIT_AS, &saved) == 0);
  rlimit capped = saved;
  capped.rlim_cur = static_cast<rlim_t>(pages) * static_cast<rlim_t>(sysconf(_SC_PAGESIZE)) +
                    (rlim_t{256} << 20);
  BOOST_REQUIRE(setrlimit(RLIMIT_AS, &capped) == 0);
  bool data_error = false;
  try {
    read_idx_labels(dir.file("labels.gz"));
  } catch (const DataError&) {
    data_error = true;
  } catch (...) {
  }
  setrlimit(RLIMIT_AS, &saved);
  BOOST_TEST(data_error);
}

BOOST_AUTO_TEST_CASE(idx_header_whose_size_overflows_is_a_data_error) {
  TempDir dir;
  write_plain(dir.file("images"), idx_images(0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu, {}));
  BOOST_CHECK_THROW(read_idx_images(dir.file("images")), DataError);
}

BOOST_AUTO_TEST_CASE(idx_data_beyond_what_the_header_claims_is_a_data_error) {
  TempDir dir;
  write_plain(dir.file("labels"), idx_labels(2, {1, 2, 3}));
  const auto message = message_of<DataError>([&] { read_idx_labels(dir.file("labels")); });
  BOOST_TEST(contains(message, "more data than its header claims"), message);
}

BOOST_AUTO_TEST_CASE(read_idx_rejects_different_image_and_label_counts) {
  TempDir dir;
  write_plain(dir.file("images"), idx_images(3, 2, 3, three_images_pixels()));
  write_plain(dir.file("labels"), idx_labels(2, {1, 2}));
  const auto message =
      message_of<DataError>([&] { read_idx(dir.file("images"), dir.file("labels")); });
  BOOST_TEST(contains(message, "3 images"), message);
  BOOST_TEST(contains(message, "2 labels"), message);
}

BOOST_AUTO_TEST_CASE(read_idx_names_the_sample_whose_label_reaches_n_classes) {
  TempDir dir;
  write_plain(dir.file("images"), idx_images(3, 2, 3, three_images_pixels()));
  write_plain(dir.file("labels"), idx_labels(3, {1, 9, 2}));
  const auto message =
      message_of<DataError>([&] { read_idx(dir.file("images"), dir.file("labels"), 5); });
  BOOST_TEST(contains(message, "sample 1"), message);
}

BOOST_AUTO_TEST_CASE(load_fashion_mnist_rejects_an_unknown_split) {
  BOOST_CHECK_THROW(load_fashion_mnist("/nonexistent", "validation"), ConfigError);
}

BOOST_AUTO_TEST_CASE(load_fashion_mnist_reports_missing_files_as_io_errors) {
  TempDir dir;
  BOOST_CHECK_THROW(load_fashion_mnist(dir.path.string(), "train"), IoError);
}

BOOST_AUTO_TEST_CASE(fashion_mnist_test_split_loads_when_installed) {
  const std::string dir = "/usr/share/datasets/fashion-mnist";
  if (!fs::exists(dir + "/t10k-images-idx3-ubyte.gz")) {
    BOOST_TEST_MESSAGE("Fashion-MNIST not installed; skipped");
    return;
  }
  const auto data = load_fashion_mnist(dir, "test");
  BOOST_TEST(data.size() == 10000u);
  BOOST_TEST((data.shape == Shape{1, 28, 28}));
  BOOST_TEST(data.x.n_rows == 784u);
  BOOST_TEST(data.x.min() >= 0.0f);
  BOOST_TEST(data.x.max() <= 1.0f);
  BOOST_TEST(data.labels.max() < 10u);
  BOOST_TEST(data.n_classes == 10u);
  BOOST_CHECK_NO_THROW(data.check());
}

BOOST_AUTO_TEST_CASE(fashion_mnist_labels_with_a_corrupt_byte_and_no_trailer_are_a_data_error) {
  const std::string installed = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz";
  if (!fs::exists(installed)) {
    BOOST_TEST_MESSAGE("Fashion-MNIST not installed; skipped");
    return;
  }
  TempDir dir;
  auto bytes = read_plain(installed);
  bytes.resize(bytes.size() - 8);
  bytes[500] ^= 0x10;
  write_plain(dir.file("t10k-labels-idx1-ubyte.gz"), bytes);
  const auto message =
      message_of<DataError>([&] { read_idx_labels(dir.file("t10k-labels-idx1-ubyte.gz")); });
  BOOST_TEST(contains(message, dir.file("t10k-labels-idx1-ubyte.gz")), message);
}

// ---------------------------------------------------------------------------------------
// CSV

BOOST_AUTO_TEST_CASE(csv_with_header_and_label_column_round_trips) {
  TempDir dir;
  write_plain(dir.file("d.csv"), "a,label,b\n1.5,2,-3\n4,0,5e-1\n");
  const auto data = read_csv(dir.file("d.csv"), {.label_column = 1});
  BOOST_TEST(data.size() == 2u);
  BOOST_TEST((data.shape == Shape{2}));
  BOOST_TEST(data.x(0, 0) == 1.5f);
  BOOST_TEST(data.x(1, 0) == -3.0f);
  BOOST_TEST(data.x(1, 1) == 0.5f);
  BOOST_TEST(data.labels[0] == 2u);
  BOOST_TEST(data.labels[1] == 0u);
  BOOST_TEST(data.n_classes == 3u);
  BOOST_TEST(!data.has_targets());
}

BOOST_AUTO_TEST_CASE(csv_without_label_column_gives_features_only) {
  TempDir dir;
  write_plain(dir.file("d.csv"), "1,2\n3,4\n5,6\n");
  const auto data = read_csv<double>(dir.file("d.csv"), {.header = false});
  BOOST_TEST(data.size() == 3u);
  BOOST_TEST(data.x(1, 2) == 6.0);
  BOOST_TEST(!data.has_labels());
  BOOST_TEST(data.n_classes == 0u);
}

BOOST_AUTO_TEST_CASE(csv_accepts_another_delimiter_blank_lines_spaces_and_crlf) {
  TempDir dir;
  write_plain(dir.file("d.csv"), "x;y\r\n 1 ; 2\r\n\r\n+3;\t4\r\n\n");
  const auto data = read_csv(dir.file("d.csv"), {.delimiter = ';'});
  BOOST_TEST(data.size() == 2u);
  BOOST_TEST(data.x(0, 1) == 3.0f);
  BOOST_TEST(data.x(1, 1) == 4.0f);
}

BOOST_AUTO_TEST_CASE(csv_target_columns_become_regression_targets) {
  TempDir dir;
  write_plain(dir.file("d.csv"), "y2,a,y1,b\n10,1,20,2\n30,3,40,4\n");
  const auto data = read_csv(dir.file("d.csv"), {.target_columns = {2, 0}});
  BOOST_TEST(data.x.n_rows == 2u);
  BOOST_TEST(data.x(1, 1) == 4.0f);
  BOOST_TEST(data.targets.n_rows == 2u);
  BOOST_TEST(data.targets(0, 0) == 20.0f);
  BOOST_TEST(data.targets(1, 0) == 10.0f);
  BOOST_TEST(data.targets(0, 1) == 40.0f);
  BOOST_CHECK_NO_THROW(data.check());
}

BOOST_AUTO_TEST_CASE(csv_gzipped_file_is_read_transparently) {
  TempDir dir;
  const std::string text = "f,label\n0.25,1\n0.75,0\n";
  write_gzip(dir.file("d.csv.gz"), Bytes(text.begin(), text.end()));
  const auto data = read_csv(dir.file("d.csv.gz"), {.label_column = 1});
  BOOST_TEST(data.size() == 2u);
  BOOST_TEST(data.x(0, 1) == 0.75f);
}

// The reader takes the file in chunks that grow from 64 KiB: a file of several chunks,
// plain and compressed, comes back whole, rows split across chunk boundaries included.
BOOST_AUTO_TEST_CASE(csv_larger_than_several_read_chunks_is_read_whole) {
  TempDir dir;
  std::string text = "a,b,label\n";
  const std::size_t rows = 40000;  // about 600 KiB
  for (std::size_t i = 0; i < rows; ++i)
    text += std::to_string(i) + ".25," + std::to_string(rows - i) + ".5," +
            std::to_string(i % 7) + "\n";
  write_plain(dir.file("d.csv"), text);
  write_gzip(dir.file("d.csv.gz"), Bytes(text.begin(), text.end()));
  for (const char* name : {"d.csv", "d.csv.gz"}) {
    const auto data = read_csv<double>(dir.file(name), {.label_column = 2});
    BOOST_TEST_REQUIRE(data.size() == rows);
    bool all = true;
    for (std::size_t i = 0; i < rows; ++i)
      all = all && data.x(0, i) == double(i) + 0.25 && data.x(1, i) == double(rows - i) + 0.5 &&
            data.labels[i] == i % 7;
    BOOST_TEST(all, name);
  }
}

BOOST_AUTO_TEST_CASE(csv_gzip_file_with_data_after_its_member_is_a_data_error) {
  TempDir dir;
  const std::string text = "f,label\n0.25,1\n";
  Bytes bytes = gzip_member(dir, Bytes(text.begin(), text.end()));
  bytes.push_back('\n');
  write_plain(dir.file("d.csv.gz"), bytes);
  const auto message = message_of<DataError>([&] { read_csv(dir.file("d.csv.gz")); });
  BOOST_TEST(contains(message, dir.file("d.csv.gz")), message);
}

BOOST_AUTO_TEST_CASE(csv_shape_option_sets_the_sample_shape) {
  TempDir dir;
  write_plain(dir.file("d.csv"), "1,2,3,4,0\n");
  const auto data =
      read_csv(dir.file("d.csv"), {.header = false, .label_column = 4, .shape = Shape{1, 2, 2}});
  BOOST_TEST((data.shape == Shape{1, 2, 2}));
  BOOST_CHECK_THROW(read_csv(dir.file("d.csv"), {.header = false, .shape = Shape{3}}), ShapeError);
}

BOOST_AUTO_TEST_CASE(csv_non_numeric_field_names_file_line_and_column) {
  TempDir dir;
  write_plain(dir.file("d.csv"), "a,b,c\n1,2,3\n4,five,6\n");
  const auto message = message_of<DataError>([&] { read_csv(dir.file("d.csv")); });
  BOOST_TEST(contains(message, dir.file("d.csv")), message);
  BOOST_TEST(contains(message, "line 3"), message);
  BOOST_TEST(contains(message, "column 2"), message);
  BOOST_TEST(contains(message, "\"five\""), message);
}

BOOST_AUTO_TEST_CASE(csv_empty_field_is_a_data_error) {
  TempDir dir;
  write_plain(dir.file("d.csv"), "1,,3\n");
  const auto message = message_of<DataError>([&] { read_csv(dir.file("d.csv"), {.header = false}); });
  BOOST_TEST(contains(message, "line 1, column 2"), message);
}

BOOST_AUTO_TEST_CASE(csv_non_finite_value_is_a_data_error) {
  TempDir dir;
  write_plain(dir.file("d.csv"), "1,nan\n");
  BOOST_CHECK_THROW(read_csv(dir.file("d.csv"), {.header = false}), DataError);
  write_plain(dir.file("e.csv"), "1,1e300\n");  // finite as double, not as float
  BOOST_CHECK_THROW(read_csv<float>(dir.file("e.csv"), {.header = false}), DataError);
  BOOST_CHECK_NO_THROW(read_csv<double>(dir.file("e.csv"), {.header = false}));
}

BOOST_AUTO_TEST_CASE(csv_ragged_row_is_a_data_error) {
  TempDir dir;
  write_plain(dir.file("d.csv"), "a,b,c\n1,2,3\n4,5,6\n7,8\n");
  const auto message = message_of<DataError>([&] { read_csv(dir.file("d.csv")); });
  BOOST_TEST(contains(message, "line 4 has 2 fields, expected 3"), message);
}

BOOST_AUTO_TEST_CASE(csv_negative_or_fractional_label_is_a_data_error) {
  TempDir dir;
  write_plain(dir.file("neg.csv"), "1,0\n2,-1\n");
  write_plain(dir.file("frac.csv"), "1,0\n2,1.5\n");
  const auto message = message_of<DataError>(
      [&] { read_csv(dir.file("neg.csv"), {.header = false, .label_column = 1}); });
  BOOST_TEST(contains(message, "line 2, column 2"), message);
  BOOST_CHECK_THROW(read_csv(dir.file("frac.csv"), {.header = false, .label_column = 1}), DataError);
}

BOOST_AUTO_TEST_CASE(csv_label_not_below_n_classes_names_the_sample) {
  TempDir dir;
  write_plain(dir.file("d.csv"), "1,0\n2,1\n3,4\n");
  const auto message = message_of<DataError>(
      [&] { read_csv(dir.file("d.csv"), {.header = false, .label_column = 1, .n_classes = 3}); });
  BOOST_TEST(contains(message, "sample 2"), message);
  BOOST_TEST(contains(message, "line 3"), message);
}

// A label of 2^53 made n_classes 2^53 + 1, and one_hot threw std::bad_alloc.
BOOST_AUTO_TEST_CASE(csv_label_not_below_max_classes_is_a_data_error_naming_the_place) {
  TempDir dir;
  write_plain(dir.file("huge.csv"), "1,0\n2,9007199254740992\n");
  const auto message = message_of<DataError>(
      [&] { read_csv(dir.file("huge.csv"), {.header = false, .label_column = 1}); });
  BOOST_TEST(contains(message, "line 2, column 2"), message);
  BOOST_TEST(contains(message, "9007199254740992"), message);
  BOOST_TEST(contains(message, "max_classes = 16777216"), message);
  write_plain(dir.file("edge.csv"), "1,0\n2,16777216\n");
  BOOST_CHECK_THROW(read_csv(dir.file("edge.csv"), {.header = false, .label_column = 1}),
                    DataError);
  write_plain(dir.file("largest.csv"), "1,0\n2,16777215\n");
  const auto data = read_csv(dir.file("largest.csv"), {.header = false, .label_column = 1});
  BOOST_TEST(data.n_classes == max_classes);
}

BOOST_AUTO_TEST_CASE(an_n_classes_above_max_classes_is_a_config_error) {
  TempDir dir;
  write_plain(dir.file("d.csv"), "1,0\n");
  BOOST_CHECK_THROW(read_csv(dir.file("d.csv"), {.header = false, .label_column = 1,
                                                 .n_classes = max_classes + 1}),
                    ConfigError);
  write_plain(dir.file("images"), idx_images(1, 2, 2, {1, 2, 3, 4}));
  write_plain(dir.file("labels"), idx_labels(1, {0}));
  BOOST_CHECK_THROW(read_idx(dir.file("images"), dir.file("labels"), max_classes + 1),
                    ConfigError);
}

BOOST_AUTO_TEST_CASE(csv_label_column_past_the_last_column_is_a_config_error) {
  TempDir dir;
  write_plain(dir.file("d.csv"), "1,2\n");
  BOOST_CHECK_THROW(read_csv(dir.file("d.csv"), {.header = false, .label_column = 2}), ConfigError);
  BOOST_CHECK_THROW(read_csv(dir.file("d.csv"), {.header = false, .label_column = -2}), ConfigError);
}

BOOST_AUTO_TEST_CASE(csv_without_data_rows_is_a_data_error) {
  TempDir dir;
  write_plain(dir.file("d.csv"), "a,b\n\n");
  BOOST_CHECK_THROW(read_csv(dir.file("d.csv")), DataError);
}

BOOST_AUTO_TEST_CASE(csv_missing_file_is_an_io_error) {
  TempDir dir;
  BOOST_CHECK_THROW(read_csv(dir.file("absent.csv")), IoError);
}

// ---------------------------------------------------------------------------------------
// Shuffling and batches

BOOST_AUTO_TEST_CASE(shuffled_indices_is_a_permutation) {
  Rng rng(1);
  const arma::uvec order = shuffled_indices(1000, rng);
  BOOST_TEST(is_permutation_of_range(order, 1000));
}

BOOST_AUTO_TEST_CASE(shuffled_indices_is_reproducible_from_the_seed) {
  Rng a(42), b(42), c(43);
  const arma::uvec first = shuffled_indices(100, a);
  BOOST_TEST(arma::all(first == shuffled_indices(100, b)));
  BOOST_TEST(arma::any(first != shuffled_indices(100, c)));
}

BOOST_AUTO_TEST_CASE(batches_cover_every_sample_exactly_once) {
  Rng rng(3);
  const BatchPlan plan = batches(10, 4, false, &rng);
  BOOST_TEST(plan.size() == 3u);
  BOOST_TEST(plan[2].size() == 2u);
  std::multiset<arma::uword> seen;
  for (const auto& range : plan.ranges)
    for (std::size_t p = range.begin; p < range.end; ++p) seen.insert(plan.order[p]);
  BOOST_TEST(seen.size() == 10u);
  for (arma::uword i = 0; i < 10; ++i) BOOST_TEST(seen.count(i) == 1u);
}

BOOST_AUTO_TEST_CASE(batches_with_drop_last_leave_out_the_partial_batch) {
  const BatchPlan plan = batches(10, 4, true);
  BOOST_TEST(plan.size() == 2u);
  for (const auto& range : plan.ranges) BOOST_TEST(range.size() == 4u);
  BOOST_TEST(batches(3, 4, true).size() == 0u);
  BOOST_TEST(batches(8, 4, true).size() == 2u);
}

BOOST_AUTO_TEST_CASE(batches_without_rng_keep_the_original_order) {
  const BatchPlan plan = batches(5, 2, false);
  for (arma::uword i = 0; i < 5; ++i) BOOST_TEST(plan.order[i] == i);
}

BOOST_AUTO_TEST_CASE(batches_reject_a_zero_batch_size) {
  BOOST_CHECK_THROW(batches(5, 0, false), ConfigError);
}

BOOST_AUTO_TEST_CASE(reshuffle_draws_a_new_permutation_in_place) {
  Rng rng(9);
  BatchPlan plan = batches(50, 8, false, &rng);
  const arma::uvec before = plan.order;
  const arma::uword* memory = plan.order.memptr();
  plan.reshuffle(rng);
  BOOST_TEST(plan.order.memptr() == memory);
  BOOST_TEST(is_permutation_of_range(plan.order, 50));
  BOOST_TEST(arma::any(plan.order != before));
}

BOOST_AUTO_TEST_CASE(copy_batch_copies_the_selected_samples) {
  const auto data = small_dataset(6);
  const arma::uvec order = {5, 2, 0, 4, 1, 3};
  arma::fmat x;
  arma::uvec labels;
  arma::fmat targets;
  copy_batch(data, order, 1, 4, x, labels, targets);
  BOOST_TEST(x.n_rows == 4u);
  BOOST_TEST(x.n_cols == 3u);
  BOOST_TEST(x(3, 0) == 23.0f);  // sample 2
  BOOST_TEST(x(0, 2) == 40.0f);  // sample 4
  BOOST_TEST(labels[0] == 2u);
  BOOST_TEST(labels[2] == 1u);
  BOOST_TEST(targets.is_empty());
}

BOOST_AUTO_TEST_CASE(copy_batch_reuses_buffers_when_the_batch_size_is_unchanged) {
  const auto data = small_dataset(40);
  Rng rng(5);
  const BatchPlan plan = batches(data.size(), 16, false, &rng);  // 16, 16, 8
  Batch<float> batch;
  copy_batch(data, plan, plan[0], batch);
  const float* x_memory = batch.x.memptr();
  const arma::uword* labels_memory = batch.labels.memptr();
  for (std::size_t b = 1; b < plan.size(); ++b) {
    const std::size_t news_before = new_calls;
    copy_batch(data, plan, plan[b], batch);
    const std::size_t news = new_calls - news_before;
    BOOST_TEST(news == 0u);
    BOOST_TEST(batch.x.memptr() == x_memory);
    BOOST_TEST(batch.labels.memptr() == labels_memory);
  }
  BOOST_TEST(batch.x.n_cols == 8u);  // the last, partial batch
  copy_batch(data, plan, plan[0], batch);  // next epoch: full size again
  BOOST_TEST(batch.x.memptr() == x_memory);
  BOOST_TEST(batch.x.n_cols == 16u);
}

BOOST_AUTO_TEST_CASE(copy_batch_rejects_an_order_index_past_the_end_without_touching_buffers) {
  const auto data = small_dataset(6);
  const arma::uvec order = {0, 1, 9};
  arma::fmat x(4, 2, arma::fill::value(-1.0f));
  arma::uvec labels;
  arma::fmat targets;
  BOOST_CHECK_THROW(copy_batch(data, order, 0, 3, x, labels, targets), DataError);
  BOOST_TEST(x.n_cols == 2u);
  BOOST_TEST(x(0, 0) == -1.0f);
  BOOST_CHECK_THROW(copy_batch(data, order, 2, 4, x, labels, targets), ConfigError);
}

// ---------------------------------------------------------------------------------------
// Splits, standardization, one-hot

BOOST_AUTO_TEST_CASE(split_gives_the_requested_sizes_and_partitions_the_samples) {
  const auto data = small_dataset(10);
  Rng rng(11);
  const auto [train, validation] = train_validation_split(data, 0.25, rng);
  BOOST_TEST(validation.size() == 3u);  // round(2.5) = 3 (half rounds up)
  BOOST_TEST(train.size() == 7u);
  std::set<float> firsts;
  for (std::size_t j = 0; j < train.size(); ++j) firsts.insert(train.x(0, j));
  for (std::size_t j = 0; j < validation.size(); ++j) firsts.insert(validation.x(0, j));
  BOOST_TEST(firsts.size() == 10u);
  BOOST_TEST(train.labels.n_elem == 7u);
  BOOST_TEST(validation.n_classes == 3u);
}

BOOST_AUTO_TEST_CASE(split_is_reproducible_from_the_seed) {
  const auto data = small_dataset(20);
  Rng a(2), b(2);
  const auto first = train_validation_split(data, 0.3, a);
  const auto second = train_validation_split(data, 0.3, b);
  BOOST_TEST(arma::approx_equal(first.second.x, second.second.x, "absdiff", 0.0f));
}

BOOST_AUTO_TEST_CASE(split_rejects_a_fraction_outside_zero_to_one) {
  const auto data = small_dataset(4);
  Rng rng(0);
  BOOST_CHECK_THROW(train_validation_split(data, 1.5, rng), ConfigError);
  BOOST_CHECK_THROW(train_validation_split(data, -0.1, rng), ConfigError);
}

BOOST_AUTO_TEST_CASE(standardizer_gives_mean_zero_and_std_one_on_its_fit_data) {
  Rng rng(4);
  arma::mat x(3, 500);
  for (auto& v : x) v = rng.normal(5.0, 3.0);
  const auto standardizer = Standardizer<double>::fit(x);
  const arma::mat z = standardizer.transform(x);
  for (arma::uword i = 0; i < 3; ++i) {
    BOOST_TEST(std::abs(arma::mean(z.row(i))) < 1e-12);
    BOOST_TEST(std::abs(arma::stddev(z.row(i), 1) - 1.0) < 1e-12);
  }
}

BOOST_AUTO_TEST_CASE(standardizer_centres_a_constant_feature_without_dividing_by_zero) {
  arma::fmat x = {{0.1f, 0.1f, 0.1f}, {1.0f, 2.0f, 3.0f}};
  const auto standardizer = Standardizer<float>::fit(x);
  BOOST_TEST(standardizer.scale[0] == 1.0f);
  standardizer.apply(x);
  BOOST_TEST(x.is_finite());
  BOOST_TEST(x(0, 0) == 0.0f);
  BOOST_TEST(x(0, 2) == 0.0f);
}

BOOST_AUTO_TEST_CASE(standardizer_applies_the_fit_statistics_to_other_data) {
  auto train = small_dataset(3);  // feature 0: 0, 10, 20 → mean 10, std sqrt(200/3)
  const auto standardizer = Standardizer<float>::fit(train);
  arma::fmat other(4, 1, arma::fill::value(10.0f));
  standardizer.apply(other);
  BOOST_TEST(other(0, 0) == 0.0f);
  standardizer.apply(train);
  BOOST_TEST(std::abs(train.x(0, 2) - 10.0f / std::sqrt(200.0f / 3.0f)) < 1e-5f);
}

BOOST_AUTO_TEST_CASE(standardizer_rejects_data_with_another_feature_count) {
  const auto standardizer = Standardizer<float>::fit(small_dataset(3));
  arma::fmat other(5, 2, arma::fill::zeros);
  BOOST_CHECK_THROW(standardizer.apply(other), ShapeError);
}

BOOST_AUTO_TEST_CASE(one_hot_puts_a_one_in_the_label_row) {
  const arma::fmat y = one_hot(arma::uvec{2, 0, 1}, 4);
  BOOST_TEST(y.n_rows == 4u);
  BOOST_TEST(y.n_cols == 3u);
  BOOST_TEST(y(2, 0) == 1.0f);
  BOOST_TEST(y(0, 1) == 1.0f);
  BOOST_TEST(y(1, 2) == 1.0f);
  BOOST_TEST(arma::accu(y) == 3.0f);
}

BOOST_AUTO_TEST_CASE(one_hot_names_the_sample_whose_label_is_out_of_range) {
  const auto message = message_of<DataError>([] { one_hot<double>(arma::uvec{0, 1, 4}, 3); });
  BOOST_TEST(contains(message, "sample 2"), message);
  BOOST_TEST(contains(message, "label 4"), message);
}

BOOST_AUTO_TEST_CASE(inputs_as_targets_keeps_the_samples_and_drops_labels_without_copying_x) {
  Dataset<float> data;
  data.shape = Shape{2};
  data.x = arma::fmat(2, 20, arma::fill::randu);  // over 16 elements: on the heap, movable
  data.labels = arma::uvec(20, arma::fill::ones);
  data.n_classes = 2;
  const float* pixels = data.x.memptr();
  const Dataset<float> own = inputs_as_targets(std::move(data));
  BOOST_TEST(own.targets_are_inputs);
  BOOST_TEST(own.x.memptr() == pixels);  // moved, not copied
  BOOST_TEST(!own.has_labels());
  BOOST_TEST(!own.has_targets());
  BOOST_TEST(own.n_classes == 0u);
  own.check();
  Rng rng(1);
  const auto [train, validation] = train_validation_split(own, 0.5, rng);
  BOOST_TEST(train.targets_are_inputs);
  BOOST_TEST(validation.targets_are_inputs);
  BOOST_TEST(own.subset({3, 0}).targets_are_inputs);
}

BOOST_AUTO_TEST_CASE(inputs_as_targets_of_a_data_set_still_in_use_views_its_images) {
  Dataset<float> data;
  data.shape = Shape{2};
  data.x = arma::fmat({{1, 2, 3}, {4, 5, 6}});
  data.labels = {0, 1, 0};
  data.n_classes = 2;
  const Dataset<float> own = inputs_as_targets(data);
  BOOST_TEST(own.x.memptr() == data.x.memptr());  // a view: no copy
  BOOST_TEST(own.targets_are_inputs);
  BOOST_TEST(!own.has_labels());
  BOOST_TEST(data.has_labels());  // the original keeps its labels for a classifier
  const Dataset<float> copy = own;
  BOOST_TEST(copy.x.memptr() != data.x.memptr());  // a copy owns its images
  BOOST_TEST(arma::approx_equal(copy.x, data.x, "absdiff", 0.0f));
}

BOOST_AUTO_TEST_CASE(data_whose_targets_are_its_inputs_and_that_holds_labels_is_a_data_error) {
  Dataset<float> images;
  images.x = arma::fmat(2, 3, arma::fill::ones);
  images.shape = Shape{2};
  Dataset<float> data = inputs_as_targets(std::move(images));
  data.labels = {0, 1, 0};
  data.n_classes = 2;
  BOOST_CHECK_EXCEPTION(data.check(), DataError, [](const DataError& e) {
    return std::string(e.what()).find("found 3 labels") != std::string::npos;
  });
}
