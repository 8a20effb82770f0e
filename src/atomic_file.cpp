// Writing a file atomically: see atomic_file.hpp.
#include "atomic_file.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <optional>
#include <random>
#include <string_view>
#include <utility>

#include "layercache/errors.hpp"

namespace layercache::detail {
namespace {

namespace fs = std::filesystem;

std::string in_quotes(const std::string& s) { return "'" + s + "'"; }

constexpr std::string_view alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
constexpr std::size_t random_length = 6;
// How long a temporary file of an earlier version, which names no process, must have been
// left alone before it counts as stale.
constexpr std::time_t unnamed_owner_age = 600;

std::string random_suffix() {
  static thread_local std::mt19937 gen(std::random_device{}());
  std::uniform_int_distribution<std::size_t> pick(0, alphabet.size() - 1);
  std::string suffix;
  for (std::size_t i = 0; i < random_length; ++i) suffix += alphabet[pick(gen)];
  return suffix;
}

bool is_random_suffix(std::string_view s) {
  return s.size() == random_length && s.find_first_not_of(alphabet) == std::string_view::npos;
}

// The owner named by `name` if it is a temporary file of the file named `base`: its process
// id, or 0 for the form of earlier versions (".tmp-XXXXXX"); nothing for other names.
std::optional<pid_t> temporary_owner(std::string_view name, const std::string& base) {
  const std::string prefix = base + ".tmp-";
  if (name.substr(0, prefix.size()) != prefix) return std::nullopt;
  name.remove_prefix(prefix.size());
  if (is_random_suffix(name)) return 0;
  const std::size_t dash = name.find('-');
  if (dash == std::string_view::npos || !is_random_suffix(name.substr(dash + 1)))
    return std::nullopt;
  pid_t pid = 0;
  const auto [end, error] = std::from_chars(name.data(), name.data() + dash, pid);
  if (error != std::errc() || end != name.data() + dash || pid <= 0) return std::nullopt;
  return pid;
}

bool process_exists(pid_t pid) { return ::kill(pid, 0) == 0 || errno == EPERM; }

}  // namespace

std::size_t remove_stale_temporaries(const std::string& target) {
  const fs::path path(target);
  const std::string base = path.filename().string();
  std::error_code error;
  fs::directory_iterator entries(path.parent_path().empty() ? fs::path(".") : path.parent_path(),
                                 error);
  if (error) return 0;
  std::size_t removed = 0;
  for (const fs::directory_entry& entry : entries) {
    const std::string name = entry.path().filename().string();
    const std::optional<pid_t> owner = temporary_owner(name, base);
    if (!owner || (*owner > 0 && process_exists(*owner))) continue;
    const int fd = ::open(entry.path().c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) continue;
    struct stat info {};
    // Its owner holds the lock while it writes: a live process in another PID namespace
    // (a container sharing the directory) keeps its file.
    const bool stale = ::fstat(fd, &info) == 0 && S_ISREG(info.st_mode) &&
                       (*owner > 0 || std::time(nullptr) - info.st_mtime > unnamed_owner_age) &&
                       ::flock(fd, LOCK_EX | LOCK_NB) == 0;
    if (stale && ::unlink(entry.path().c_str()) == 0) ++removed;
    ::close(fd);
  }
  return removed;
}

AtomicFile::AtomicFile(std::string target, std::string what)
    : target_(std::move(target)),
      what_(std::move(what)),
      name_(target_ + ".tmp-" + std::to_string(::getpid()) + "-" + random_suffix()) {}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (created_ && !name_.empty()) ::unlink(name_.c_str());
}

void AtomicFile::failed(const std::string& what) const {
  throw IoError("cannot write " + what_ + ": " + what + ": " + std::strerror(errno), target_);
}

// The file is created, and locked for as long as this process has it open, only now that
// there is something to write; the stale temporaries of the target go first, so that their
// space is free for it.
void AtomicFile::create() {
  remove_stale_temporaries(target_);
  const std::string prefix = target_ + ".tmp-" + std::to_string(::getpid()) + "-";
  for (int attempt = 0; attempt < 100; ++attempt) {
    if (attempt > 0) name_ = prefix + random_suffix();
    fd_ = ::open(name_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd_ >= 0) {
      created_ = true;
      if (::flock(fd_, LOCK_EX) != 0) failed("cannot lock " + in_quotes(name_));
      return;
    }
    if (errno != EEXIST) failed("cannot create a temporary file next to it");
  }
  throw IoError("cannot write " + what_ + ": no free temporary file name next to it", target_);
}

void AtomicFile::write(const char* data, std::size_t size) {
  if (!created_) create();
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
  if (!created_) create();
  if (::fsync(fd_) != 0) failed("fsync of " + in_quotes(name_) + " failed");
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) failed("closing " + in_quotes(name_) + " failed");
  if (std::rename(name_.c_str(), target_.c_str()) != 0) failed("cannot replace the file");
  name_.clear();
  const fs::path parent = fs::path(target_).parent_path();
  const std::string dir = parent.empty() ? std::string(".") : parent.string();
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
}

}  // namespace layercache::detail
