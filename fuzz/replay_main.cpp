// A main() for the fuzz targets without libFuzzer: runs LLVMFuzzerTestOneInput once on each
// file named on the command line (directories: each file in them), then on a few inputs every
// target must take (empty, one byte of each kind, a truncated header). The normal build links
// every target with it and runs it as a test over fuzz/regressions/TARGET, so a target that no
// longer links, or a regression input that crashes or throws an untyped exception again, fails
// `scripts/test` without clang.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

std::size_t run_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", file.c_str());
    std::exit(2);
  }
  const std::vector<char> bytes{std::istreambuf_iterator<char>(in), {}};
  LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t inputs = 0;
  for (int i = 1; i < argc; ++i) {
    const std::filesystem::path path(argv[i]);
    if (std::filesystem::is_directory(path)) {
      for (const auto& entry : std::filesystem::directory_iterator(path))
        if (entry.is_regular_file()) inputs += run_file(entry.path());
    } else {
      inputs += run_file(path);
    }
  }
  // Inputs every target must answer with a typed error or a result: nothing, each selector
  // byte alone, and each selector followed by a short run of 0xff.
  LLVMFuzzerTestOneInput(nullptr, 0);
  ++inputs;
  for (unsigned pick = 0; pick < 64; ++pick) {
    std::uint8_t input[9] = {static_cast<std::uint8_t>(pick), 0xff, 0xff, 0xff, 0xff,
                             0xff, 0xff, 0xff, 0xff};
    LLVMFuzzerTestOneInput(input, 1);
    LLVMFuzzerTestOneInput(input, sizeof input);
    inputs += 2;
  }
  std::printf("replayed %zu inputs, no finding\n", inputs);
  return 0;
}
