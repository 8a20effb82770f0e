// The one exception hierarchy of layercache (docs/contract.md#errors).
//
// Every error carries a path (the layer or tensor it concerns, e.g. "classifier/dense2")
// and a detail sentence saying what was expected and what was found. A network rethrows a
// child's error after prepending the child's name, so the final message names the full path:
//   classifier/dense2: expected input (256), got (128)
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace layercache {

/// Base of every exception thrown by layercache. `what()` is "path: detail" (or just
/// "detail" when no path is known).
class Error : public std::exception {
 public:
  /// An error about `path` (may be empty) with a human-readable `detail`.
  explicit Error(std::string detail, std::string path = {});

  /// The full message, "path: detail".
  const char* what() const noexcept override { return message_.c_str(); }
  /// The slash-separated location the error concerns, e.g. "encoder/dense1/weight".
  const std::string& path() const noexcept { return path_; }
  /// The message without the path.
  const std::string& detail() const noexcept { return detail_; }
  /// Prepends one path segment; used by networks as errors travel up the layer tree.
  void prepend_path(std::string_view segment);

 private:
  void rebuild();
  std::string detail_;
  std::string path_;
  std::string message_;
};

/// A tensor or sample shape does not match what a layer, loss or tree expects.
class ShapeError : public Error { using Error::Error; };
/// A cache was handed to a layer that did not produce it (or is malformed).
class CacheError : public Error { using Error::Error; };
/// Invalid configuration: unknown names, bad hyper-parameters, mismatched trees.
class ConfigError : public Error { using Error::Error; };
/// Bad data: corrupt or truncated files, labels out of range, non-numeric fields.
class DataError : public Error { using Error::Error; };
/// A NaN or Inf appeared where numeric checking is enabled.
class NumericError : public Error { using Error::Error; };
/// A file could not be opened, read or written.
class IoError : public Error { using Error::Error; };

/// Joins two path parts with '/', skipping empty parts.
std::string join_path(std::string_view parent, std::string_view child);

}  // namespace layercache
