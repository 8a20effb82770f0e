// The checkpoint callback of fit: the run saved after every epoch, the last few files kept,
// and the best epoch by a monitored metric; and finding the latest checkpoint to resume from.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <vector>

#include "layercache/distributed.hpp"
#include "layercache/train_state.hpp"
#include "common.hpp"

namespace layercache {
namespace {

namespace fs = std::filesystem;

constexpr const char* epoch_prefix = "epoch-";
constexpr const char* epoch_suffix = ".h5";

std::string epoch_file_name(std::int64_t epoch) {
  char digits[32];
  std::snprintf(digits, sizeof digits, "%06lld", static_cast<long long>(epoch));
  return epoch_prefix + std::string(digits) + epoch_suffix;
}

// The epoch of a file called epoch-<digits>.h5, or nothing for any other name (a temporary
// file of a save in progress, best.h5, the user's own files).
std::optional<std::int64_t> epoch_of(const std::string& name) {
  const std::string prefix = epoch_prefix, suffix = epoch_suffix;
  if (name.size() <= prefix.size() + suffix.size() || name.rfind(prefix, 0) != 0 ||
      name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
    return std::nullopt;
  const std::string digits = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
  if (digits.size() > 18 || !std::all_of(digits.begin(), digits.end(), [](char c) {
        return c >= '0' && c <= '9';
      }))
    return std::nullopt;
  return std::stoll(digits);
}

// The epoch checkpoints in `directory`, oldest first.
std::vector<std::pair<std::int64_t, fs::path>> epoch_files(const std::string& directory) {
  std::vector<std::pair<std::int64_t, fs::path>> files;
  std::error_code ec;
  for (fs::directory_iterator it(directory, ec), end; !ec && it != end; it.increment(ec))
    if (const auto epoch = epoch_of(it->path().filename().string()))
      files.emplace_back(*epoch, it->path());
  std::sort(files.begin(), files.end());
  return files;
}

// True when `value` beats every earlier epoch's value of `monitor` in `history` (all but its
// last entry, which is this epoch). Compared as T: a history loaded with a run holds its
// values as T, so a resumed run decides as the uninterrupted one.
template <class T>
bool best_so_far(const History& history, const std::string& monitor, bool maximize,
                 double value) {
  const T current = T(value);
  for (std::size_t i = 0; i + 1 < history.epochs.size(); ++i) {
    const T earlier = T(history.epochs[i].get(monitor));
    if (std::isnan(earlier)) continue;
    if (maximize ? earlier >= current : earlier <= current) return false;
  }
  return true;
}

}  // namespace

template <class T>
Callback<T> save_checkpoints(const CheckpointOptions& options) {
  if (options.directory.empty())
    throw ConfigError("save_checkpoints needs a directory (CheckpointOptions::directory)");
  if (options.keep_last == 0)
    throw ConfigError("save_checkpoints keeps at least one checkpoint: keep_last is 0");
  const bool maximize = options.monitor.empty()
                            ? false
                            : detail::monitor_maximizes(options.monitor, "save_checkpoints");
  auto check = [options](const FitStart<T>& start) {
    if (!options.monitor.empty())
      detail::check_monitor_measured(options.monitor, start, "save_checkpoints");
    std::error_code ec;
    fs::create_directories(options.directory, ec);
    if (ec || !fs::is_directory(options.directory))
      throw IoError("save_checkpoints cannot make the directory: " + ec.message(),
                    options.directory);
  };
  auto after_epoch = [options, maximize](const EpochLog& log, FitContext<T>& fit) {
    if (!fit.run) throw ConfigError("save_checkpoints runs inside fit, which gives it the run");
    // In a group every rank holds the same run: rank 0 writes it (fit makes every rank
    // throw when that fails), the others read it when they resume.
    if (fit.group && fit.group->rank() != 0) return;
    const TrainState<T>& run = *fit.run;
    const fs::path directory(options.directory);
    save_train_state((directory / epoch_file_name(run.epoch)).string(), run);
    // The new file is in place before any older one goes.
    auto files = epoch_files(options.directory);
    for (std::size_t i = 0; i + options.keep_last < files.size(); ++i) {
      std::error_code ignored;  // a file removed meanwhile is as good as removed
      fs::remove(files[i].second, ignored);
    }
    if (options.monitor.empty()) return;
    const double value = log.get(options.monitor);
    if (!std::isnan(value) && best_so_far<T>(fit.history, options.monitor, maximize, value))
      save_train_state((directory / "best.h5").string(), run);
  };
  return Callback<T>(std::move(after_epoch), std::move(check));
}

std::string latest_checkpoint(const std::string& directory) {
  const auto files = epoch_files(directory);
  return files.empty() ? std::string() : files.back().second.string();
}

template Callback<float> save_checkpoints<float>(const CheckpointOptions&);
template Callback<double> save_checkpoints<double>(const CheckpointOptions&);

}  // namespace layercache
