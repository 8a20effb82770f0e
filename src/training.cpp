// Training: one step from the primitives (on the calling thread or split across worker
// threads), fit() with progress and callbacks, evaluate and predict on the inference path.
#include "layercache/training.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "batch_gather.hpp"
#include "layercache/initializers.hpp"
#include "optim/optimizer_access.hpp"
#include "split_work.hpp"
#include "vector_kernel.hpp"
#include "worker_pool.hpp"

namespace layercache {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Correct predictions in a batch: arg-max against the label for class scores, the sign of
// the logit for a binary classifier's single output (binary cross-entropy with logits).
template <class T>
std::size_t correct_predictions(const arma::Mat<T>& y, const arma::uvec& labels) {
  if (y.n_rows == 1)
    return static_cast<std::size_t>(std::llround(binary_accuracy(y, labels) * double(y.n_cols)));
  return count_correct(y, labels);
}

// Checks a data set against the network before training: sample shape, and labels within
// the network's outputs (naming the first offending sample).
template <class T>
void check_data(const Layer& network, const Dataset<T>& data, const Loss& loss, const char* which) {
  try {
    const Shape out = network.output_shape(data.shape);
    if (data.x.n_rows != data.shape.size())
      throw ShapeError("the samples have " + std::to_string(data.x.n_rows) +
                       " rows but the data's shape " + data.shape.str() + " needs " +
                       std::to_string(data.shape.size()));
    if (!data.labels.is_empty()) {
      if (!loss.accepts_labels())
        throw ConfigError("the data has labels but the loss '" + loss.name() +
                          "' takes target matrices");
      if (data.labels.n_elem != data.x.n_cols)
        throw ShapeError("expected one label per sample (" + std::to_string(data.x.n_cols) +
                         "), got " + std::to_string(data.labels.n_elem));
      const std::size_t classes = loss.name() == "binary_cross_entropy_with_logits" ? 2 : out.size();
      for (arma::uword i = 0; i < data.labels.n_elem; ++i)
        if (data.labels[i] >= classes)
          throw DataError("sample " + std::to_string(i) + " has label " +
                          std::to_string(data.labels[i]) + ", out of range for the network's " +
                          std::to_string(classes) + " classes (0.." + std::to_string(classes - 1) + ")");
    } else if (data.targets.is_empty()) {
      throw ConfigError("the data has neither labels nor targets");
    }
  } catch (Error& e) {
    e.prepend_path(which);
    throw;
  }
}

// A non-owning view of columns [begin, end) of x.
template <class T>
const arma::Mat<T> columns_view(const arma::Mat<T>& x, std::size_t begin, std::size_t end) {
  return arma::Mat<T>(const_cast<T*>(x.colptr(begin)), x.n_rows, end - begin, false, true);
}

// A non-owning view of entries [begin, end) of the labels.
const arma::uvec labels_view(const arma::uvec& labels, std::size_t begin, std::size_t end) {
  return arma::uvec(const_cast<arma::uword*>(labels.memptr()) + begin, end - begin, false, true);
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

}  // namespace

// ----- one step ---------------------------------------------------------------------------

namespace detail {

// One shard of a data-parallel step: its own forward caches, loss gradient, grads and
// random stream, reused from step to step.
template <class T>
struct Shard {
  ForwardResult<T> forward;
  BackwardResult<T> backward;
  arma::Mat<T> dy;
  Rng rng;
  double loss = 0;
  std::size_t correct = 0;
};

template <class T>
struct Shards {
  explicit Shards(std::size_t n) : pool(n), extra(n - 1) {}
  WorkerPool pool;
  std::vector<Shard<T>> extra;          // shards 1..n-1; shard 0 uses the workspace itself
  std::vector<T*> sums;                 // per grads leaf: shard 0's buffer (the total)
  std::vector<std::size_t> sizes;       // per grads leaf: its number of elements
  std::vector<const T*> parts;          // per grads leaf and extra shard: what to add
  std::vector<char> finite;             // per task: its share of the summed grads is finite
};

template <class T>
void ShardsDeleter<T>::operator()(Shards<T>* shards) const noexcept {
  delete shards;
}

}  // namespace detail

namespace {

// Forward, loss and backward of one batch (or shard) into the given buffers; `weight`
// scales the loss gradient (the shard's share of the batch).
template <class T>
double forward_loss_backward(const Layer& network, const Tree<T>& params, const Tree<T>& state,
                             const Loss& loss, const arma::Mat<T>& x, const Shape& x_shape,
                             const Targets<T>& targets, const Needs& needs, const Context& ctx,
                             ForwardResult<T>& forward, arma::Mat<T>& dy,
                             BackwardResult<T>& backward, std::size_t& correct, double weight) {
  network.forward(params, x, x_shape, ctx, forward, state);
  const double value = loss.value_and_grad(forward.y(), targets, &dy);
  correct = targets.has_labels() ? correct_predictions(forward.y(), targets.labels()) : 0;
  if (weight != 1.0) dy *= T(weight);
  network.backward(params, *forward.cache, dy, needs, backward);
  return value;
}

// Number of shards a batch is split into. One (a one-pass step) with one thread, with a
// network that has state, or with targets that do not match the batch (the one pass
// reports that error).
template <class T>
std::size_t shard_count(const StepWorkspace<T>& ws, const arma::Mat<T>& x,
                        const Targets<T>& targets, const Tree<T>& state) {
  const std::size_t columns = x.n_cols;
  if (ws.threads <= 1 || ws.split == Split::layers || state.n_tensors() != 0) return 1;
  if (targets.has_labels() ? targets.labels().n_elem != columns
                           : targets.matrix().n_cols != columns)
    return 1;
  const std::size_t by_size = columns / std::max<std::size_t>(ws.min_shard_columns, 1);
  return std::max<std::size_t>(1, std::min(ws.threads, by_size));
}

// Sets the BLAS to one thread for the lifetime of the guard.
class SingleThreadedBlas {
 public:
  SingleThreadedBlas() : saved_(blas_threads()) {
    if (saved_ != 1) set_blas_threads(1);
  }
  ~SingleThreadedBlas() {
    if (saved_ != 1) set_blas_threads(saved_);
  }
  SingleThreadedBlas(const SingleThreadedBlas&) = delete;
  SingleThreadedBlas& operator=(const SingleThreadedBlas&) = delete;

 private:
  int saved_;
};

// Runs task(t) for every t in [0, pool.size()) on the pool's threads, the BLAS
// single-threaded meanwhile. Returns false when a task threw.
template <class F>
bool run_with_single_threaded_blas(detail::WorkerPool& pool, F& task) {
  SingleThreadedBlas single;
  pool.run(task);
  return !pool.first_error();
}

// sum += part over n elements (one shard's share of a gradient sum); returns whether every
// resulting sum is finite. s − s is 0 for a finite s and NaN for NaN or ±Inf, so the eight
// partial sums of those differences stay 0 exactly when all sums are finite (the idiom of
// optim::all_finite); the check costs nothing in a loop bound by memory.
template <class T>
LAYERCACHE_VECTOR_KERNEL bool add_into(T* __restrict sum, const T* __restrict part,
                                       std::size_t n) noexcept {
  T partial[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  const std::size_t blocked = n - n % 8;
  for (std::size_t j = 0; j < blocked; j += 8)
    for (std::size_t k = 0; k < 8; ++k) {
      const T s = sum[j + k] + part[j + k];
      sum[j + k] = s;
      partial[k] += s - s;
    }
  T total = 0;
  for (std::size_t j = blocked; j < n; ++j) {
    const T s = sum[j] + part[j];
    sum[j] = s;
    total += s - s;
  }
  for (T v : partial) total += v;
  return total == T(0);
}

// The workspace's shards and threads, made on first use (and when the thread count changed).
template <class T>
detail::Shards<T>& shards_of(StepWorkspace<T>& ws) {
  if (!ws.shards.ptr || ws.shards.ptr->pool.size() != ws.threads)
    ws.shards.ptr.reset(new detail::Shards<T>(ws.threads));
  return *ws.shards.ptr;
}

// Where a step's batch comes from: the caller's matrices (data null), or the samples
// order[begin..) of a data set, which the step gathers into workspace.batch.
template <class T>
struct BatchSource {
  const Dataset<T>* data = nullptr;
  const arma::uvec* order = nullptr;
  std::size_t begin = 0;

  // Copies the batch's columns [first, last) into the workspace's batch (data only).
  void gather(StepWorkspace<T>& ws, std::size_t first, std::size_t last) const noexcept {
    if (data)
      detail::fill_batch(*data, *order, begin, first, last, ws.batch.x, ws.batch.labels,
                         ws.batch.targets);
  }
};

// Forward, loss and backward of a batch split into `n` shards on the workspace's threads;
// leaves the summed grads in ws.backward.grads and sets `grads_finite` to whether every
// summed gradient is finite. Each shard first gathers its own columns of the batch from
// `source`, if that is a data set. Returns false when a shard threw (the caller redoes the
// batch in one pass, which reports the error as a one-pass step would).
template <class T>
bool sharded_pass(const Layer& network, const Tree<T>& params, const Tree<T>& state,
                  const Loss& loss, const arma::Mat<T>& x, const Shape& x_shape,
                  const Targets<T>& targets, const BatchSource<T>& source, const Needs& needs,
                  const Context& ctx, StepWorkspace<T>& ws, std::size_t n, StepResult& result,
                  bool& grads_finite) {
  detail::Shards<T>& sh = shards_of(ws);  // threads ≥ n: tasks n.. sit this step out
  const std::size_t columns = x.n_cols;
  const auto begin = [&](std::size_t i) { return columns * i / n; };
  if (ctx.rng)
    for (std::size_t i = 1; i < n; ++i) sh.extra[i - 1].rng = ctx.rng->split();
  Rng first_rng = ctx.rng ? ctx.rng->split() : Rng();

  Needs shard_needs = needs;
  shard_needs.executor = nullptr;
  auto pass = [&](std::size_t i) {
    if (i >= n) return;
    const std::size_t b = begin(i), e = begin(i + 1);
    source.gather(ws, b, e);
    const arma::Mat<T> xs = columns_view(x, b, e);
    Context c = ctx;
    c.executor = nullptr;  // the shard is itself one of the threads
    detail::Shard<T>* shard = i == 0 ? nullptr : &sh.extra[i - 1];
    c.rng = ctx.rng ? (shard ? &shard->rng : &first_rng) : nullptr;
    const double weight = double(e - b) / double(columns);
    ForwardResult<T>& fwd = shard ? shard->forward : ws.forward;
    arma::Mat<T>& dy = shard ? shard->dy : ws.dy;
    BackwardResult<T>& bwd = shard ? shard->backward : ws.backward;
    std::size_t correct = 0;
    double value;
    if (targets.has_labels()) {
      const arma::uvec ls = labels_view(targets.labels(), b, e);
      value = forward_loss_backward(network, params, state, loss, xs, x_shape, Targets<T>(ls),
                                    shard_needs, c, fwd, dy, bwd, correct, weight);
    } else {
      const arma::Mat<T> ts = columns_view(targets.matrix(), b, e);
      value = forward_loss_backward(network, params, state, loss, xs, x_shape, Targets<T>(ts),
                                    shard_needs, c, fwd, dy, bwd, correct, weight);
    }
    if (shard) {
      shard->loss = value * weight;
      shard->correct = correct;
    } else {
      result.loss = value * weight;
      result.correct = correct;
    }
  };
  if (!run_with_single_threaded_blas(sh.pool, pass)) return false;

  // The gradients' sum, each thread adding one slice of every leaf and checking that slice
  // of the total for NaN and Inf as it writes it.
  sh.sums.clear();
  sh.sizes.clear();
  sh.parts.clear();
  ws.backward.grads.for_each([&](const std::string&, arma::Mat<T>& g) {
    sh.sums.push_back(g.memptr());
    sh.sizes.push_back(g.n_elem);
  });
  for (std::size_t k = 1; k < n; ++k)
    sh.extra[k - 1].backward.grads.for_each([&](const std::string&, const arma::Mat<T>& g) {
      sh.parts.push_back(g.memptr());
    });
  const std::size_t leaves = sh.sums.size(), tasks = sh.pool.size();
  sh.finite.assign(tasks, 1);
  auto reduce = [&](std::size_t i) {
    bool finite = true;
    for (std::size_t l = 0; l < leaves; ++l) {
      const std::size_t size = sh.sizes[l], b = size * i / tasks, e = size * (i + 1) / tasks;
      T* sum = sh.sums[l];
      for (std::size_t k = 0; k + 1 < n; ++k) {
        const T* part = sh.parts[k * leaves + l];
        const bool sum_finite = add_into(sum + b, part + b, e - b);
        if (k + 2 == n) finite = finite && sum_finite;  // the last part gives the total
      }
    }
    sh.finite[i] = finite;
  };
  sh.pool.run(reduce);
  grads_finite = std::all_of(sh.finite.begin(), sh.finite.end(), [](char f) { return f != 0; });
  for (std::size_t k = 1; k < n; ++k) {
    result.loss += sh.extra[k - 1].loss;
    result.correct += sh.extra[k - 1].correct;
  }
  return true;
}

// Forward, loss and backward of the whole batch in one pass in which the layers split their
// work between the workspace's threads (and so does gathering the batch from `source`, if
// that is a data set). Errors are thrown on this thread, before anything changes.
template <class T>
void layer_split_pass(const Layer& network, const Tree<T>& params, const Tree<T>& state,
                      const Loss& loss, const arma::Mat<T>& x, const Shape& x_shape,
                      const Targets<T>& targets, const BatchSource<T>& source,
                      const Needs& needs, const Context& ctx, StepWorkspace<T>& ws,
                      StepResult& result) {
  Executor& executor = shards_of(ws).pool;
  SingleThreadedBlas single;
  Context split_ctx = ctx;
  split_ctx.executor = &executor;
  Needs split_needs = needs;
  split_needs.executor = &executor;
  auto gather = [&](std::size_t i, std::size_t tasks) noexcept {
    const detail::Share columns(x.n_cols, 1, i, tasks);
    source.gather(ws, columns.begin, columns.end);
  };
  if (source.data) detail::run_on(executor, gather);
  result.loss = forward_loss_backward(network, params, state, loss, x, x_shape, targets,
                                      split_needs, split_ctx, ws.forward, ws.dy, ws.backward,
                                      result.correct, 1.0);
}

// One step on a batch from `source` (x and targets view the workspace's batch when it is
// a data set).
template <class T>
StepResult step_on(const Layer& network, Tree<T>& params, Tree<T>& state,
                   const Optimizer& optimizer, OptState<T>& opt_state, const Loss& loss,
                   const arma::Mat<T>& x, const Shape& x_shape, const Targets<T>& targets,
                   const BatchSource<T>& source, const Needs& needs, const Context& ctx,
                   StepWorkspace<T>& ws) {
  if (ws.threads == 0)
    throw ConfigError("train_step needs workspace.threads >= 1 (1 runs the step on the calling thread)");
  StepResult result;
  const std::size_t n = shard_count(ws, x, targets, state);
  const bool split_layers = n == 1 && ws.threads > 1 && ws.split != Split::batch;
  bool grads_finite = false;
  if (split_layers) {
    layer_split_pass(network, params, state, loss, x, x_shape, targets, source, needs, ctx, ws,
                     result);
  } else if (n == 1 || !sharded_pass(network, params, state, loss, x, x_shape, targets, source,
                                     needs, ctx, ws, n, result, grads_finite)) {
    // One pass; also how a failed sharded pass reports its error, with whole-batch indices.
    source.gather(ws, 0, x.n_cols);
    result.loss = forward_loss_backward(network, params, state, loss, x, x_shape, targets, needs,
                                        ctx, ws.forward, ws.dy, ws.backward, result.correct, 1.0);
    if (n != 1) std::rethrow_exception(ws.shards.ptr->pool.first_error());
  }
  // The update checks everything before changing anything, on the step's threads when it
  // has them; after a sharded pass that found the summed grads finite it skips only its own
  // scan of them. When that pass found NaN or Inf, the full update is what scans them again
  // and names the first bad entry.
  if (n == 1 && !split_layers)
    optimizer.update(params, ws.backward.grads, opt_state);
  else if (grads_finite)
    detail::OptimizerAccess::update_with_finite_grads(optimizer, params, ws.backward.grads,
                                                      opt_state, ws.shards.ptr->pool);
  else
    optimizer.update(params, ws.backward.grads, opt_state, ws.shards.ptr->pool);
  if (!ws.forward.state.empty()) state = ws.forward.state;
  return result;
}

}  // namespace

template <class T>
StepResult train_step(const Layer& network, Tree<T>& params, Tree<T>& state,
                      const Optimizer& optimizer, OptState<T>& opt_state, const Loss& loss,
                      const arma::Mat<T>& x, const Shape& x_shape, const TargetsArg<T>& targets,
                      const Needs& needs, const Context& ctx, StepWorkspace<T>& ws) {
  return step_on(network, params, state, optimizer, opt_state, loss, x, x_shape, targets,
                 BatchSource<T>{}, needs, ctx, ws);
}

template <class T>
StepResult train_step(const Layer& network, Tree<T>& params, Tree<T>& state,
                      const Optimizer& optimizer, OptState<T>& opt_state, const Loss& loss,
                      const Dataset<T>& data, const BatchPlan& plan, const BatchRange& range,
                      const Needs& needs, const Context& ctx, StepWorkspace<T>& ws) {
  Batch<T>& batch = ws.batch;
  detail::prepare_batch(data, plan.order, range.begin, range.end, batch.x, batch.labels,
                        batch.targets);
  const Targets<T> targets =
      data.has_labels() ? Targets<T>(batch.labels) : Targets<T>(batch.targets);
  return step_on(network, params, state, optimizer, opt_state, loss, batch.x, data.shape,
                 targets, BatchSource<T>{&data, &plan.order, range.begin}, needs, ctx, ws);
}

// ----- history and callbacks --------------------------------------------------------------

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

template <class T>
Callback<T> early_stopping(const EarlyStoppingOptions& options) {
  // Unknown names fail now, not after the first epoch.
  const std::string& monitor = options.monitor;
  if (monitor != "loss" && monitor != "accuracy" && monitor != "val_loss" &&
      monitor != "val_accuracy")
    throw ConfigError("early stopping cannot monitor '" + monitor +
                      "': it monitors loss, accuracy, val_loss or val_accuracy");
  const bool maximize = monitor.find("accuracy") != std::string::npos;
  struct Memory {
    double best = std::numeric_limits<double>::quiet_NaN();
    std::size_t best_epoch = 0;
    std::size_t waited = 0;
    Tree<T> best_params, best_state;
  };
  auto memory = std::make_shared<Memory>();
  // The run must measure the metric: validation data for val_*, labels for the accuracies.
  auto check = [monitor, maximize](const FitStart<T>& start) {
    const bool validation = monitor.rfind("val_", 0) == 0;
    const char* which = validation ? "validation" : "training";
    if (validation && !start.options.validation)
      throw ConfigError("early stopping monitors '" + monitor +
                        "', which needs validation data: FitOptions::validation is null");
    const Dataset<T>& data = validation ? *start.options.validation : start.train;
    if (maximize && !data.has_labels())
      throw ConfigError("early stopping monitors '" + monitor + "', which needs labels: the " +
                        which + " data has targets");
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

// ----- fit --------------------------------------------------------------------------------

template <class T>
History fit(const Layer& network, Tree<T>& params, Tree<T>& state, const Optimizer& optimizer,
            OptState<T>& opt_state, const Loss& loss, const Dataset<T>& train,
            const FitOptions<T>& options) {
  if (options.batch_size == 0) throw ConfigError("fit needs a positive batch_size");
  if (options.threads == 0) throw ConfigError("fit needs threads >= 1 (1 runs each step on the calling thread)");
  if (options.eval_batch_size == 0) throw ConfigError("fit needs a positive eval_batch_size");
  if (train.size() == 0) throw DataError("the training data is empty");
  {
    // The params must be what the network's init makes, names and shapes: an extra entry
    // inside a layer would otherwise be passed over by forward and moved by the optimizer.
    Rng unused(0);
    network.template init<T>(train.shape, zeros(), unused)
        .check_same_structure(params, "params given to fit");
  }
  check_data(network, train, loss, "training data");
  if (options.validation) check_data(network, *options.validation, loss, "validation data");

  Rng shuffle_rng(options.seed);
  Rng draw_rng = shuffle_rng.split();
  BatchPlan plan = batches(train.size(), options.batch_size, options.drop_last,
                           options.shuffle ? &shuffle_rng : nullptr);
  if (plan.size() == 0)
    throw ConfigError("no batch to train on: " + std::to_string(train.size()) +
                      " samples with batch_size " + std::to_string(options.batch_size) +
                      " and drop_last");
  FrozenSet frozen;
  if (!options.freeze.empty()) frozen = freeze(params, options.freeze);
  Needs needs;
  needs.input = false;
  needs.frozen = options.freeze.empty() ? nullptr : &frozen;
  const FitStart<T> start{network, params, state, train, options, plan.size()};
  for (const auto& callback : options.callbacks) callback.before_training(start);
  Context ctx;
  ctx.mode = Mode::train;
  ctx.rng = &draw_rng;
  ctx.check_finite = options.check_finite;

  History history;
  Reporter reporter(options.progress, options.log, options.epochs, plan.size());
  StepWorkspace<T> workspace;
  workspace.threads = options.threads;
  workspace.split = options.split;
  for (std::size_t epoch = 1; epoch <= options.epochs; ++epoch) {
    const auto start = Clock::now();
    if (options.shuffle && epoch > 1) plan.reshuffle(shuffle_rng);
    double loss_sum = 0;
    std::size_t correct = 0, seen = 0;
    for (std::size_t b = 0; b < plan.size(); ++b) {
      const StepResult step = train_step(network, params, state, optimizer, opt_state, loss,
                                         train, plan, plan[b], needs, ctx, workspace);
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
      const Metrics m = evaluate(network, params, state, loss, *options.validation,
                                 options.eval_batch_size, options.threads);
      log.val_loss = m.loss;
      log.val_accuracy = m.accuracy;
    }
    log.seconds = seconds_since(start);
    history.epochs.push_back(log);
    reporter.epoch_done(log);
    optimizer.report(opt_state, options.validation ? log.val_loss : log.loss);

    FitContext<T> fit_context{network, params, state, opt_state, history, false, {}};
    for (const auto& callback : options.callbacks) callback(log, fit_context);
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
            const Loss& loss, const Dataset<T>& train, const FitOptions<T>& options) {
  OptState<T> opt_state = optimizer.init(params);
  return fit(network, params, state, optimizer, opt_state, loss, train, options);
}

// ----- evaluate and predict ---------------------------------------------------------------

namespace {

// Runs task(t) for every t in [0, tasks) at the same time on as many threads, the BLAS
// single-threaded meanwhile; task(0) alone on the calling thread when tasks is 1. Returns
// false when a task threw.
template <class F>
bool run_tasks(std::size_t tasks, F& task) {
  if (tasks <= 1) {
    task(0);
    return true;
  }
  detail::WorkerPool pool(tasks);
  return run_with_single_threaded_blas(pool, task);
}

// Number of batches of batch_size samples (the last may be smaller) out of n.
std::size_t batch_count(std::size_t n, std::size_t batch_size) {
  return (n + batch_size - 1) / batch_size;
}

}  // namespace

template <class T>
Metrics evaluate(const Layer& network, const Tree<T>& params, const Tree<T>& state,
                 const Loss& loss, const Dataset<T>& data, std::size_t batch_size,
                 std::size_t threads) {
  if (batch_size == 0) throw ConfigError("evaluate needs a positive batch_size");
  if (threads == 0) throw ConfigError("evaluate needs threads >= 1");
  Metrics metrics;
  metrics.samples = data.size();
  if (data.size() == 0) return metrics;
  check_data(network, data, loss, "data");  // names a bad label by its index in the data set
  const bool labels = !data.labels.is_empty();
  const std::size_t batches = batch_count(data.size(), batch_size);
  // Thread t takes batches t, t + tasks, ...; each keeps its own output and sums.
  std::size_t tasks = std::min(threads, batches);
  std::vector<arma::Mat<T>> outputs(tasks);
  std::vector<double> loss_sums(tasks, 0.0);
  std::vector<std::size_t> corrects(tasks, 0);
  auto task = [&](std::size_t t) {
    for (std::size_t b = t; b < batches; b += tasks) {
      const std::size_t begin = b * batch_size, end = std::min(begin + batch_size, data.size());
      arma::Mat<T>& y = outputs[t];  // reused: shape and labels were checked above
      network.infer_into(params, state, columns_view(data.x, begin, end), data.shape, y);
      if (labels) {
        const arma::uvec batch_labels = labels_view(data.labels, begin, end);
        loss_sums[t] += loss.value(y, batch_labels) * double(end - begin);
        corrects[t] += correct_predictions(y, batch_labels);
      } else {
        const arma::Mat<T> targets = columns_view(data.targets, begin, end);
        loss_sums[t] += loss.value(y, targets) * double(end - begin);
      }
    }
  };
  if (!run_tasks(tasks, task)) {
    // Once more on this thread, batch after batch: throws the error a one-thread pass gives.
    tasks = 1;
    loss_sums.assign(1, 0.0);
    corrects.assign(1, 0);
    task(0);
  }
  double loss_sum = 0;
  std::size_t correct = 0;
  for (std::size_t t = 0; t < tasks; ++t) {
    loss_sum += loss_sums[t];
    correct += corrects[t];
  }
  metrics.loss = loss_sum / double(data.size());
  if (labels) metrics.accuracy = double(correct) / double(data.size());
  return metrics;
}

template <class T>
arma::Mat<T> predict(const Layer& network, const Tree<T>& params, const Tree<T>& state,
                     const arma::Mat<T>& x, const Shape& x_shape, std::size_t batch_size,
                     std::size_t threads) {
  if (batch_size == 0) throw ConfigError("predict needs a positive batch_size");
  if (threads == 0) throw ConfigError("predict needs threads >= 1");
  const Shape shape = x_shape.rank() ? x_shape : Shape{x.n_rows};
  check_rows(x.n_rows, shape);
  const Shape out_shape = network.output_shape(shape);
  arma::Mat<T> out(out_shape.size(), x.n_cols);
  const std::size_t batches = batch_count(x.n_cols, batch_size);
  std::size_t tasks = std::max<std::size_t>(1, std::min(threads, batches));
  std::vector<arma::Mat<T>> outputs(tasks);
  auto task = [&](std::size_t t) {
    for (std::size_t b = t; b < batches; b += tasks) {
      const std::size_t begin = b * batch_size, end = std::min<std::size_t>(begin + batch_size, x.n_cols);
      arma::Mat<T>& y = outputs[t];
      network.infer_into(params, state, columns_view(x, begin, end), shape, y);
      out.cols(begin, end - 1) = y;
    }
  };
  if (!run_tasks(tasks, task)) {
    tasks = 1;  // once more on this thread: throws the error a one-thread pass gives
    task(0);
  }
  return out;
}

#define LAYERCACHE_INSTANTIATE_TRAINING(T)                                                     \
  template StepResult train_step(const Layer&, Tree<T>&, Tree<T>&, const Optimizer&,           \
                                 OptState<T>&, const Loss&, const arma::Mat<T>&, const Shape&, \
                                 const TargetsArg<T>&, const Needs&, const Context&,           \
                                 StepWorkspace<T>&);                                           \
  template StepResult train_step(const Layer&, Tree<T>&, Tree<T>&, const Optimizer&,           \
                                 OptState<T>&, const Loss&, const Dataset<T>&,                 \
                                 const BatchPlan&, const BatchRange&, const Needs&,            \
                                 const Context&, StepWorkspace<T>&);                           \
  template Callback<T> early_stopping<T>(const EarlyStoppingOptions&);                         \
  template History fit(const Layer&, Tree<T>&, Tree<T>&, const Optimizer&, OptState<T>&,       \
                       const Loss&, const Dataset<T>&, const FitOptions<T>&);                  \
  template struct detail::ShardsDeleter<T>;                                                    \
  template History fit(const Layer&, Tree<T>&, Tree<T>&, const Optimizer&, const Loss&,        \
                       const Dataset<T>&, const FitOptions<T>&);                               \
  template Metrics evaluate(const Layer&, const Tree<T>&, const Tree<T>&, const Loss&,         \
                            const Dataset<T>&, std::size_t, std::size_t);                      \
  template arma::Mat<T> predict(const Layer&, const Tree<T>&, const Tree<T>&,                  \
                                const arma::Mat<T>&, const Shape&, std::size_t, std::size_t);

LAYERCACHE_INSTANTIATE_TRAINING(float)
LAYERCACHE_INSTANTIATE_TRAINING(double)

}  // namespace layercache
