// libFuzzer target: the IDX reader (plain and gzip-compressed, images and labels, and the pair
// with its checks). The first input byte picks what is read, the rest is the file.
#include "fuzz_input.hpp"
#include "layercache/data.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t pick = data[0];
  const std::string& file = fuzz::input_file(".idx");
  fuzz::write_file(file, data + 1, size - 1);
  fuzz::expect_layercache_errors_only([&] {
    switch (pick % 3) {
      case 0: layercache::read_idx_images<float>(file); break;
      case 1: layercache::read_idx_labels(file); break;
      default: layercache::read_idx<double>(file, file, pick / 3 % 12); break;
    }
  });
  return 0;
}
