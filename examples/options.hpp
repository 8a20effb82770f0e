// The examples' command lines: `--flag value` options and `--flag` switches, with `--help`.
//
//   parse_options(argc, argv, usage, [&](const std::string& flag, const Value& value) {
//     if (flag == "--epochs") epochs = integer<std::size_t>(flag, value());
//     else return false;  // not one of ours
//     return true;
//   });
//
// `--help` (or `-h`) prints the usage and exits with status 0. A flag nobody knows, an option
// without its value or a value that does not parse prints what is wrong and the usage to
// stderr and exits with status 2, before any work starts.
#pragma once

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <stdexcept>
#include <string>

namespace examples {

/// A bad command line; parse_options reports it with the usage.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Takes the argument after the current flag (a UsageError when there is none).
using Value = std::function<std::string()>;

/// Calls on_option(flag, value) for every flag in argv; on_option returns false for a flag it
/// does not know. Handles --help and errors as the file comment says.
inline void parse_options(int argc, char** argv, const char* usage,
                          const std::function<bool(const std::string&, const Value&)>& on_option) {
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string flag = argv[i];
      if (flag == "--help" || flag == "-h") {
        std::fputs(usage, stdout);
        std::exit(0);
      }
      const Value value = [&]() -> std::string {
        if (i + 1 >= argc) throw UsageError("option " + flag + " needs a value");
        return argv[++i];
      };
      if (!on_option(flag, value)) throw UsageError("unknown option " + flag);
    }
  } catch (const UsageError& e) {
    std::fprintf(stderr, "%s: %s\n%s", argv[0], e.what(), usage);
    std::exit(2);
  }
}

/// The whole of `text` as a non-negative integer; a UsageError naming `flag` otherwise.
template <class Int>
Int integer(const std::string& flag, const std::string& text) {
  Int v{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty() || v < 0)
    throw UsageError("option " + flag + " needs a non-negative integer, got '" + text + "'");
  return v;
}

/// The whole of `text` as a finite number; a UsageError naming `flag` otherwise.
inline double number(const std::string& flag, const std::string& text) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(v))
    throw UsageError("option " + flag + " needs a number, got '" + text + "'");
  return v;
}

}  // namespace examples
