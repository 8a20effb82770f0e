// What fit reports and runs after every epoch: the epoch logs and history (with its CSV),
// and the early-stopping callback.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <limits>
#include <memory>
#include <sstream>

#include "layercache/training.hpp"
#include "common.hpp"

namespace layercache {

double EpochLog::get(const std::string& name) const {
  if (name == "loss") return loss;
  if (name == "accuracy") return accuracy;
  if (name == "val_loss") return val_loss;
  if (name == "val_accuracy") return val_accuracy;
  if (name == "seconds") return seconds;
  throw ConfigError("unknown metric '" + name +
                    "'; valid names: loss, accuracy, val_loss, val_accuracy, seconds");
}

std::string History::csv() const {
  std::ostringstream os;
  os << "epoch,loss,accuracy,val_loss,val_accuracy,seconds\n";
  os << std::setprecision(9);
  auto cell = [&](double v) -> std::ostream& {
    if (std::isnan(v)) return os;
    return os << v;
  };
  for (const auto& e : epochs) {
    os << e.epoch << ",";
    cell(e.loss) << ",";
    cell(e.accuracy) << ",";
    cell(e.val_loss) << ",";
    cell(e.val_accuracy) << ",";
    cell(e.seconds) << "\n";
  }
  return os.str();
}

void History::write_csv(const std::string& path) const {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw IoError("cannot open '" + tmp + "' for writing", path);
    f << csv();
    f.flush();
    if (!f) {
      std::remove(tmp.c_str());
      throw IoError("writing the history failed", path);
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    throw IoError("cannot replace the file: " + ec.message(), path);
  }
}

bool detail::monitor_maximizes(const std::string& monitor, const std::string& who) {
  if (monitor != "loss" && monitor != "accuracy" && monitor != "val_loss" &&
      monitor != "val_accuracy")
    throw ConfigError(who + " cannot monitor '" + monitor +
                      "': it monitors loss, accuracy, val_loss or val_accuracy");
  return monitor.find("accuracy") != std::string::npos;
}

template <class T>
void detail::check_monitor_measured(const std::string& monitor, const FitStart<T>& start,
                                    const std::string& who) {
  // The run must measure the metric: validation data for val_*, labels for the accuracies.
  const bool validation = monitor.rfind("val_", 0) == 0;
  const char* which = validation ? "validation" : "training";
  if (validation && !start.options.validation)
    throw ConfigError(who + " monitors '" + monitor +
                      "', which needs validation data: FitOptions::validation is null");
  const Dataset<T>& data = validation ? *start.options.validation : start.train;
  if (monitor.find("accuracy") != std::string::npos && !data.has_labels())
    throw ConfigError(who + " monitors '" + monitor + "', which needs labels: the " + which +
                      " data has targets");
}

template void detail::check_monitor_measured(const std::string&, const FitStart<float>&,
                                             const std::string&);
template void detail::check_monitor_measured(const std::string&, const FitStart<double>&,
                                             const std::string&);

template <class T>
Callback<T> early_stopping(const EarlyStoppingOptions& options) {
  // Unknown names fail now, not after the first epoch.
  const bool maximize = detail::monitor_maximizes(options.monitor, "early stopping");
  struct Memory {
    double best = std::numeric_limits<double>::quiet_NaN();
    std::size_t best_epoch = 0;
    std::size_t waited = 0;
    Tree<T> best_params, best_state;
  };
  auto memory = std::make_shared<Memory>();
  auto check = [monitor = options.monitor](const FitStart<T>& start) {
    detail::check_monitor_measured(monitor, start, "early stopping");
  };
  auto after_epoch = [options, maximize, memory](const EpochLog& log, FitContext<T>& fit) {
    const double value = log.get(options.monitor);
    if (std::isnan(value))
      throw ConfigError("early stopping monitors '" + options.monitor +
                        "', which is NaN in epoch " + std::to_string(log.epoch) +
                        ": not measured (no validation data or labels), or training diverged");
    const bool improved = std::isnan(memory->best) ||
                          (maximize ? value > memory->best + options.min_delta
                                    : value < memory->best - options.min_delta);
    if (improved) {
      memory->best = value;
      memory->best_epoch = log.epoch;
      memory->waited = 0;
      if (options.restore_best) {
        memory->best_params = fit.params;
        memory->best_state = fit.state;
      }
      return;
    }
    if (++memory->waited < options.patience) return;
    fit.stop = true;
    std::ostringstream reason;
    reason << options.monitor << " did not improve for " << options.patience
           << " epochs; best " << memory->best << " at epoch " << memory->best_epoch;
    if (options.restore_best) {
      fit.params = memory->best_params;
      fit.state = memory->best_state;
      reason << " (params restored)";
    }
    fit.stop_reason = reason.str();
  };
  return Callback<T>(std::move(after_epoch), std::move(check));
}

template Callback<float> early_stopping<float>(const EarlyStoppingOptions&);
template Callback<double> early_stopping<double>(const EarlyStoppingOptions&);

}  // namespace layercache
