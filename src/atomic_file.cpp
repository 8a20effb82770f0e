// Writing a file atomically: see atomic_file.hpp.
#include "atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <utility>

#include "layercache/errors.hpp"

namespace layercache::detail {
namespace {

std::string in_quotes(const std::string& s) { return "'" + s + "'"; }

}  // namespace

AtomicFile::AtomicFile(std::string target, std::string what)
    : target_(std::move(target)), what_(std::move(what)) {
  std::random_device seed;
  std::mt19937 gen(seed());
  const char* alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::uniform_int_distribution<int> pick(0, 35);
  for (int attempt = 0; attempt < 100; ++attempt) {
    std::string name = target_ + ".tmp-";
    for (int i = 0; i < 6; ++i) name += alphabet[pick(gen)];
    fd_ = ::open(name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd_ >= 0) {
      name_ = std::move(name);
      return;
    }
    if (errno != EEXIST) failed("cannot create a temporary file next to it");
  }
  throw IoError("cannot write " + what_ + ": no free temporary file name next to it", target_);
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!name_.empty()) ::unlink(name_.c_str());
}

void AtomicFile::failed(const std::string& what) const {
  throw IoError("cannot write " + what_ + ": " + what + ": " + std::strerror(errno), target_);
}

void AtomicFile::write(const char* data, std::size_t size) {
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = ::write(fd_, data + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) failed("writing " + in_quotes(name_) + " failed");
    done += static_cast<std::size_t>(n);
  }
}

// Syncs the directory after the rename so the rename itself survives a crash (best effort:
// the new file is in place by then).
void AtomicFile::commit() {
  if (::fsync(fd_) != 0) failed("fsync of " + in_quotes(name_) + " failed");
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) failed("closing " + in_quotes(name_) + " failed");
  if (std::rename(name_.c_str(), target_.c_str()) != 0) failed("cannot replace the file");
  name_.clear();
  const std::filesystem::path parent = std::filesystem::path(target_).parent_path();
  const std::string dir = parent.empty() ? std::string(".") : parent.string();
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
}

}  // namespace layercache::detail
