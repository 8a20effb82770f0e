// What the fuzz targets share: the readers take file names, so each input is written to a
// file of this process's own first; any exception other than layercache's Error (or a crash,
// a leak, undefined behaviour, a hang) is a finding.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "layercache/errors.hpp"

namespace fuzz {

// A file in $TMPDIR (else /tmp) named after this process, rewritten for every input.
inline const std::string& input_file(const char* suffix) {
  static const std::string name = [&] {
    const char* dir = std::getenv("TMPDIR");
    return std::string(dir && *dir ? dir : "/tmp") + "/layercache-fuzz-" +
           std::to_string(::getpid()) + suffix;
  }();
  return name;
}

inline void write_file(const std::string& name, const std::uint8_t* data, std::size_t size) {
  std::FILE* out = std::fopen(name.c_str(), "wb");
  if (!out || (size > 0 && std::fwrite(data, 1, size, out) != size) || std::fclose(out) != 0) {
    std::perror(name.c_str());
    std::abort();
  }
}

// Runs `read`: layercache's errors are the promised answer to bad input; anything else
// aborts with what it was, so that libFuzzer keeps the input.
template <class Read>
void expect_layercache_errors_only(Read read) {
  try {
    read();
  } catch (const layercache::Error&) {
  } catch (const std::exception& e) {
    std::fprintf(stderr, "untyped exception: %s\n", e.what());
    std::abort();
  }
}

}  // namespace fuzz
