// Writing a file atomically (checkpoints, ONNX models): the bytes go to a fresh temporary file
// next to the target, which is flushed to disk and renamed over the target, so a crash or a
// failed write never destroys the previous file and never leaves a half-written one.
//
// A process killed before the rename leaves its temporary file behind. Each one carries its
// process's id in its name and is locked (flock) by its process while it is written, so the
// next save of the same target removes those that no live process owns.
#pragma once

#include <cstddef>
#include <string>

namespace layercache::detail {

/// A temporary file next to `target`, named target + ".tmp-<process id>-XXXXXX" and created
/// only when the first bytes are written (or at commit); removed when the AtomicFile goes out
/// of scope unless committed. Creating it first removes the target's stale temporary files:
/// those of processes that are gone (remove_stale_temporaries). Every failure throws IoError
/// naming the target, with the message "cannot write <what>: ..." (`what` is e.g.
/// "checkpoint").
class AtomicFile {
 public:
  AtomicFile(std::string target, std::string what);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  /// The temporary file's name; no file of that name exists before the first write.
  const std::string& name() const noexcept { return name_; }
  /// Appends `size` bytes (creating the file on the first call).
  void write(const char* data, std::size_t size);
  /// Forces the bytes to disk and renames the file over the target.
  void commit();

 private:
  [[noreturn]] void failed(const std::string& what) const;
  void create();

  std::string target_;
  std::string what_;
  std::string name_;
  int fd_ = -1;
  bool created_ = false;
};

/// Removes the temporary files of `target` that no live process owns: named as AtomicFile
/// names them, with the id of a process that no longer exists and not locked by anyone; and
/// those of earlier versions of layercache (target + ".tmp-XXXXXX", without a process id)
/// that are unlocked and were last written more than 10 minutes ago. Returns how many it
/// removed; failures are ignored (a temporary file left is only wasted space).
std::size_t remove_stale_temporaries(const std::string& target);

}  // namespace layercache::detail
