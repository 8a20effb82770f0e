// Writing a file atomically (checkpoints, ONNX models): the bytes go to a fresh temporary file
// next to the target, which is flushed to disk and renamed over the target, so a crash or a
// failed write never destroys the previous file and never leaves a half-written one.
#pragma once

#include <cstddef>
#include <string>

namespace layercache::detail {

/// A fresh, empty file next to `target` (target + ".tmp-XXXXXX"), removed when it goes out of
/// scope unless committed. Every failure throws IoError naming the target, with the message
/// "cannot write <what>: ..." (`what` is e.g. "checkpoint").
class AtomicFile {
 public:
  AtomicFile(std::string target, std::string what);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  /// The temporary file's name.
  const std::string& name() const noexcept { return name_; }
  /// Appends `size` bytes.
  void write(const char* data, std::size_t size);
  /// Forces the bytes to disk and renames the file over the target.
  void commit();

 private:
  [[noreturn]] void failed(const std::string& what) const;

  std::string target_;
  std::string what_;
  std::string name_;
  int fd_ = -1;
};

}  // namespace layercache::detail
