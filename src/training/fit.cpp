// fit: epochs of shuffled mini-batches, each a train_step, with progress output (a redrawn
// bar on a terminal, plain lines otherwise), validation, the optimizer's report and callbacks.
#include "layercache/train_state.hpp"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <iomanip>
#include <iostream>
#include <numeric>
#include <sstream>

#include "layercache/distributed.hpp"
#include "layercache/initializers.hpp"
#include "layercache/sizes.hpp"
#include "common.hpp"
#include "warnings.hpp"

namespace layercache {
namespace {

using detail::check_data;

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string format_seconds(double s) {
  std::ostringstream os;
  if (s < 60)
    os << std::fixed << std::setprecision(s < 10 ? 1 : 0) << s << "s";
  else
    os << int(s) / 60 << "m" << std::setw(2) << std::setfill('0') << int(s) % 60 << "s";
  return os.str();
}

std::string format_metric(const char* name, double v) {
  if (std::isnan(v)) return "";
  std::ostringstream os;
  os << "  " << name << " " << std::fixed << std::setprecision(4) << v;
  return os.str();
}

// Progress output: a redrawn bar on a terminal, one line per epoch otherwise.
class Reporter {
 public:
  Reporter(Progress mode, std::ostream* log, std::size_t epochs, std::size_t batches)
      : out_(log ? *log : std::cerr), epochs_(epochs), batches_(batches) {
    if (mode == Progress::automatic)
      mode = (!log || log == &std::cerr) && isatty(fileno(stderr)) ? Progress::bar : Progress::lines;
    mode_ = mode;
  }

  void batch_done(std::size_t epoch, std::size_t batch, double running_loss, Clock::time_point start) {
    if (mode_ != Progress::bar) return;
    const auto now = Clock::now();
    if (batch + 1 != batches_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    const double done = double(batch + 1) / double(batches_);
    const double elapsed = seconds_since(start);
    const int width = 30;
    const int filled = int(done * width);
    std::string bar(filled, '=');
    if (filled < width) bar += '>' + std::string(width - filled - 1, ' ');
    out_ << "\repoch " << epoch << "/" << epochs_ << " [" << bar << "] " << std::setw(3)
         << int(done * 100) << "% " << (batch + 1) << "/" << batches_ << "  loss " << std::fixed
         << std::setprecision(4) << running_loss << "  ETA "
         << format_seconds(elapsed / done - elapsed) << "   " << std::flush;
  }

  void epoch_done(const EpochLog& log) {
    if (mode_ == Progress::silent) return;
    if (mode_ == Progress::bar) out_ << "\r";
    out_ << "epoch " << log.epoch << "/" << epochs_ << format_metric("loss", log.loss)
         << format_metric("accuracy", log.accuracy) << format_metric("val_loss", log.val_loss)
         << format_metric("val_accuracy", log.val_accuracy) << "  " << format_seconds(log.seconds)
         << (mode_ == Progress::bar ? std::string(20, ' ') : std::string()) << "\n"
         << std::flush;
  }

  void warn(const std::string& message) {
    if (mode_ == Progress::silent) return;
    if (mode_ == Progress::bar) out_ << "\r" << std::string(80, ' ') << "\r";
    out_ << "warning: " << message << "\n" << std::flush;
  }

  void stopped(const std::string& reason) {
    if (mode_ != Progress::silent) out_ << "stopped early: " << reason << "\n" << std::flush;
  }

 private:
  std::ostream& out_;
  Progress mode_;
  std::size_t epochs_;
  std::size_t batches_;
  Clock::time_point last_draw_{};
};

// Moves params, state and optimizer state into a run for the time of a fit call, and back.
template <class T>
class BorrowedRun {
 public:
  BorrowedRun(Tree<T>& params, Tree<T>& state, OptState<T>& opt_state, std::uint64_t seed)
      : params_(params), state_(state), opt_state_(opt_state) {
    run.params = std::move(params);
    run.state = std::move(state);
    run.opt = std::move(opt_state);
    run.rng = Rng(seed);
  }
  ~BorrowedRun() {
    params_ = std::move(run.params);
    state_ = std::move(run.state);
    opt_state_ = std::move(run.opt);
  }
  BorrowedRun(const BorrowedRun&) = delete;
  BorrowedRun& operator=(const BorrowedRun&) = delete;

  TrainState<T> run;

 private:
  Tree<T>& params_;
  Tree<T>& state_;
  OptState<T>& opt_state_;
};

// fit's checks before anything runs: the options, the run's counters, the params against
// the network's init, the data against the network, and every callback's own check.
template <class T>
void check_fit(const Layer& network, const TrainState<T>& run, const Loss& loss,
               const Dataset<T>& train, const FitOptions<T>& options, const BatchPlan& plan) {
  if (run.epoch < 0 || run.step < 0)
    throw ConfigError("the run's counters are negative: epoch " + std::to_string(run.epoch) +
                      ", step " + std::to_string(run.step));
  {
    // The params must be what the network's init makes, names and shapes: an extra entry
    // inside a layer would otherwise be passed over by forward and moved by the optimizer.
    Rng unused(0);
    network.template init<T>(train.shape, zeros(), unused)
        .check_same_structure(run.params, "params given to fit");
  }
  check_data(network, train, loss, "training data");
  if (options.validation) check_data(network, *options.validation, loss, "validation data");
  if (plan.size() == 0)
    throw ConfigError("no batch to train on: " + std::to_string(train.size()) +
                      " samples with batch_size " + std::to_string(options.batch_size) +
                      " and drop_last");
  const std::size_t ranks = options.group ? options.group->size() : 1;
  if (plan.ranges.back().size() < ranks)
    throw ConfigError("the last batch of each epoch holds " +
                      std::to_string(plan.ranges.back().size()) + " samples, fewer than the " +
                      std::to_string(ranks) + " ranks (set drop_last, or a batch_size that "
                      "leaves at least one sample per rank)");
}

}  // namespace

template <class T>
History fit(const Layer& network, TrainState<T>& run, const Optimizer& optimizer,
            const Loss& loss, const Dataset<T>& train, const FitOptions<T>& options) {
  if (options.batch_size == 0) throw ConfigError("fit needs a positive batch_size");
  if (options.threads == 0) throw ConfigError("fit needs threads >= 1 (1 runs each step on the calling thread)");
  if (options.eval_batch_size == 0) throw ConfigError("fit needs a positive eval_batch_size");
  if (train.size() == 0) throw DataError("the training data is empty");
  Collective* group = options.group;
  const bool root = !group || group->rank() == 0;

  // Each epoch's order is drawn afresh from the run's stream, so the stream alone (saved
  // with the run) decides every later epoch. With a group, a batch is every rank's samples.
  const std::size_t batch_size =
      checked_mul(options.batch_size, group ? group->size() : 1, "batch_size × ranks");
  BatchPlan plan = batches(train.size(), batch_size, options.drop_last);
  FrozenSet frozen;
  Needs needs;
  needs.input = false;
  std::exception_ptr outcome;
  try {
    check_fit(network, run, loss, train, options, plan);
    if (!options.freeze.empty()) frozen = freeze(run.params, options.freeze);
    needs.frozen = options.freeze.empty() ? nullptr : &frozen;
    const FitStart<T> start{network, run.params, run.state, train, options, plan.size()};
    for (const auto& callback : options.callbacks) callback.before_training(start);
  } catch (...) {
    if (!group) throw;
    outcome = std::current_exception();
  }
  if (group) {
    // Every rank checked its own data and run; then all start from rank 0's run.
    check_all(*group, outcome);
    broadcast(*group, run);
  }
  Context ctx;
  ctx.mode = Mode::train;
  ctx.rng = &run.rng;
  ctx.check_finite = options.check_finite;

  History& history = run.history;
  history.stopped_early = false;
  history.stop_reason.clear();
  Reporter reporter(root ? options.progress : Progress::silent, options.log, options.epochs,
                    plan.size());
  history.warnings.clear();
  auto warn = [&](const std::string& message) {
    history.warnings.push_back(message);
    reporter.warn(message);
  };
  if (auto w = detail::activation_applied_twice(network, train.shape, loss)) warn(*w);
  detail::LossExplosionWatch explosion;
  StepWorkspace<T>& workspace = run.workspace;
  workspace.threads = options.threads;
  workspace.split = options.split;
  workspace.group = group;
  workspace.bucket_bytes = options.bucket_bytes;
  workspace.sync_state = options.sync_state;
  for (std::size_t epoch = std::size_t(run.epoch) + 1; epoch <= options.epochs; ++epoch) {
    const auto start = Clock::now();
    if (options.shuffle) {
      std::iota(plan.order.begin(), plan.order.end(), arma::uword(0));
      shuffle(plan.order, run.rng);
    }
    double loss_sum = 0;
    std::size_t correct = 0, seen = 0;
    for (std::size_t b = 0; b < plan.size(); ++b) {
      const StepResult step = train_step(network, run.params, run.state, optimizer, run.opt,
                                         loss, train, plan, plan[b], needs, ctx, workspace);
      ++run.step;
      if (auto w = explosion.step(step.loss)) warn(*w);
      const std::size_t count = plan[b].size();
      loss_sum += step.loss * double(count);
      correct += step.correct;
      seen += count;
      reporter.batch_done(epoch, b, loss_sum / double(seen), start);
    }
    EpochLog log;
    log.epoch = epoch;
    log.samples = seen;
    log.loss = loss_sum / double(seen);
    if (!train.labels.is_empty()) log.accuracy = double(correct) / double(seen);
    if (options.validation) {
      const Metrics m = evaluate(network, run.params, run.state, loss, *options.validation,
                                 options.eval_batch_size, options.threads, group);
      log.val_loss = m.loss;
      log.val_accuracy = m.accuracy;
    }
    log.seconds = seconds_since(start);
    history.epochs.push_back(log);
    run.epoch = std::int64_t(epoch);
    reporter.epoch_done(log);
    optimizer.report(run.opt, options.validation ? log.val_loss : log.loss);

    FitContext<T> fit_context{network, run.params, run.state, run.opt, history, false, {},
                              &run, group};
    if (group) {
      // The callbacks run on every rank; a failure (rank 0 writing a checkpoint) or a stop on
      // any rank is every rank's.
      double stops = 0;
      try {
        for (const auto& callback : options.callbacks) callback(log, fit_context);
        stops = fit_context.stop ? 1 : 0;
      } catch (...) {
        outcome = std::current_exception();
      }
      check_all(*group, outcome, &stops, 1);
      if (stops != 0 && !fit_context.stop) {
        fit_context.stop = true;
        fit_context.stop_reason = "a callback on another rank stopped training";
      }
    } else {
      for (const auto& callback : options.callbacks) callback(log, fit_context);
    }
    if (fit_context.stop) {
      history.stopped_early = epoch < options.epochs;
      history.stop_reason = fit_context.stop_reason;
      reporter.stopped(fit_context.stop_reason);
      break;
    }
  }
  return history;
}

template <class T>
History fit(const Layer& network, Tree<T>& params, Tree<T>& state, const Optimizer& optimizer,
            OptState<T>& opt_state, const Loss& loss, const Dataset<T>& train,
            const FitOptions<T>& options) {
  BorrowedRun<T> borrowed(params, state, opt_state, options.seed);
  return fit(network, borrowed.run, optimizer, loss, train, options);
}

template <class T>
History fit(const Layer& network, Tree<T>& params, Tree<T>& state, const Optimizer& optimizer,
            const Loss& loss, const Dataset<T>& train, const FitOptions<T>& options) {
  OptState<T> opt_state = optimizer.init(params);
  return fit(network, params, state, optimizer, opt_state, loss, train, options);
}

#define LAYERCACHE_INSTANTIATE_FIT(T)                                                          \
  template History fit(const Layer&, Tree<T>&, Tree<T>&, const Optimizer&, OptState<T>&,       \
                       const Loss&, const Dataset<T>&, const FitOptions<T>&);                  \
  template History fit(const Layer&, Tree<T>&, Tree<T>&, const Optimizer&, const Loss&,        \
                       const Dataset<T>&, const FitOptions<T>&);                               \
  template History fit(const Layer&, TrainState<T>&, const Optimizer&, const Loss&,            \
                       const Dataset<T>&, const FitOptions<T>&);

LAYERCACHE_INSTANTIATE_FIT(float)
LAYERCACHE_INSTANTIATE_FIT(double)

}  // namespace layercache
