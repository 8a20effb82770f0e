// libFuzzer target: the checkpoint loader on any bytes: load_checkpoint for inputs of even
// size, load_params (one tree's values, the others' structure only) for odd sizes.
//
// Inputs in HDF5's earliest file format (superblock version 0 or 1: what earlier versions of
// layercache, and h5py by default, write) are skipped. Their metadata carries no checksums and
// libhdf5 1.10 decodes it unchecked: a damaged message in an object header crashes it, which
// layercache cannot prevent short of parsing every kind of message itself
// (docs/reliability.md, "Outside the promise"). The format layercache writes (superblock 2,
// checksummed metadata) and everything libhdf5 reads from such a file are fuzzed.
#include <cstring>

#include "fuzz_input.hpp"
#include "layercache/checkpoint.hpp"

namespace {

// True when the first HDF5 signature (at 0, 512, 1024, ...) is followed by superblock version
// 0 or 1.
bool earliest_format(const std::uint8_t* data, std::size_t size) {
  for (std::size_t at = 0; at + 9 <= size; at = at == 0 ? 512 : 2 * at)
    if (std::memcmp(data + at, "\x89HDF\r\n\x1a\n", 8) == 0) return data[at + 8] < 2;
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (earliest_format(data, size)) return -1;  // not added to the corpus
  const std::string& file = fuzz::input_file(".h5");
  fuzz::write_file(file, data, size);
  fuzz::expect_layercache_errors_only([&] {
    if (size % 2 == 0) layercache::load_checkpoint<float>(file);
    else layercache::load_params<float>(file);
  });
  return 0;
}
