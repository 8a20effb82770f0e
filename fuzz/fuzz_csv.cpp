// libFuzzer target: the CSV reader (plain and gzip-compressed). The first two input bytes pick
// the options (header, label or target columns, delimiter, n_classes), the rest is the file.
#include "fuzz_input.hpp"
#include "layercache/data.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::uint8_t a = data[0], b = data[1];
  layercache::CsvOptions options;
  options.header = a & 1;
  options.delimiter = (a & 2) ? ';' : ',';
  switch (a >> 2 & 3) {
    case 0: options.label_column = -1; break;
    case 1: options.label_column = b % 4; break;
    case 2: options.target_columns = {std::size_t(b % 4)}; break;
    default: options.label_column = 0; options.n_classes = b % 16; break;
  }
  if (a & 0x10) options.shape = layercache::Shape{std::size_t(b >> 4 & 3) + 1, std::size_t(2)};
  const std::string& file = fuzz::input_file(".csv");
  fuzz::write_file(file, data + 2, size - 2);
  fuzz::expect_layercache_errors_only([&] {
    if (a & 0x20) layercache::read_csv<double>(file, options);
    else layercache::read_csv<float>(file, options);
  });
  return 0;
}
