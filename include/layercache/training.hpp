// Training (docs/training.md): one step from the primitives, fit() over epochs, evaluate() and
// predict() on the inference path. All of it is optional: a custom loop is a dozen lines of
// forward, loss, backward and update (examples/custom_loop.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <limits>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "layercache/blas.hpp"
#include "layercache/data.hpp"
#include "layercache/layer.hpp"
#include "layercache/losses.hpp"
#include "layercache/optimizers.hpp"

namespace layercache {

class Collective;  // layercache/distributed.hpp

namespace detail {
/// The shards and worker threads of a data-parallel step (defined in src/training.cpp).
template <class T>
struct Shards;
/// Deletes Shards (defined where Shards is complete).
template <class T>
struct ShardsDeleter {
  /// Joins the worker threads and frees the shards' buffers.
  void operator()(Shards<T>* shards) const noexcept;
};
/// The buffers of a step's gradient sum across processes (src/distributed/).
template <class T>
class GradientExchange;
/// Deletes a GradientExchange (defined where it is complete).
template <class T>
struct GradientExchangeDeleter {
  /// Frees the exchange's buffers.
  void operator()(GradientExchange<T>* exchange) const noexcept;
};
/// Owner of a workspace's internal buffers (P, deleted by D). A copy starts without them (it
/// makes its own on its first step), so two copies never share threads or buffers.
template <class P, class D>
class FreshOnCopy {
 public:
  FreshOnCopy() = default;
  /// Copies nothing: the copy makes its own.
  FreshOnCopy(const FreshOnCopy& /*other*/) noexcept {}
  /// Keeps this handle's own.
  FreshOnCopy& operator=(const FreshOnCopy& /*other*/) noexcept { return *this; }
  /// Takes over the buffers.
  FreshOnCopy(FreshOnCopy&&) noexcept = default;
  /// Takes over the buffers.
  FreshOnCopy& operator=(FreshOnCopy&&) noexcept = default;
  ~FreshOnCopy() = default;

  /// The buffers; null until first needed.
  std::unique_ptr<P, D> ptr;
};
/// Owner of a workspace's shards and threads.
template <class T>
using ShardsHandle = FreshOnCopy<Shards<T>, ShardsDeleter<T>>;
/// Owner of a workspace's gradient exchange.
template <class T>
using ExchangeHandle = FreshOnCopy<GradientExchange<T>, GradientExchangeDeleter<T>>;
}  // namespace detail

/// How a training step shares its work between several threads (StepWorkspace::split);
/// docs/training.md, "Threads", compares them.
enum class Split {
  /// `batch` when the batch is large enough for two shards of min_shard_columns, `layers`
  /// otherwise. A network with state (BatchNorm) is split by batch too: its statistics are
  /// summed over the whole batch across the shards (BatchReduction).
  automatic,
  /// Data parallelism: each thread runs forward, loss and backward on its own column range
  /// of the batch (a shard); the shards' gradients are summed.
  batch,
  /// Intra-layer parallelism: one pass over the whole batch, in which layers split their
  /// own work between the threads (Context::executor, Needs::executor).
  layers,
};

/// Buffers one training step reuses from the previous step, so a steady-state step makes
/// no heap allocation, and the threads the step shares its work across. How the threads
/// split a step, and what a split step guarantees (the one-pass result up to the order of
/// the float additions; bit-identical for the same seed, batch size and thread count):
/// docs/training.md, "Threads".
template <class T = float>
struct StepWorkspace {
  /// Forward result (output, caches), overwritten each step. With several shards, the
  /// first shard's.
  ForwardResult<T> forward;
  /// Backward result (grads), overwritten each step: the whole batch's gradients.
  BackwardResult<T> backward;
  /// Loss gradient with respect to the network output, (n_out × batch); with several
  /// shards, the first shard's (n_out × its columns, weighted).
  arma::Mat<T> dy;
  /// Threads a step shares its work across (see split); 1 runs the whole batch on
  /// the calling thread. The threads are started on the first parallel step and kept
  /// until the workspace is destroyed.
  std::size_t threads = 1;
  /// How the threads share a step: split the batch or each layer's work (see Split).
  Split split = Split::automatic;
  /// The smallest shard: a batch is split into at most batch / min_shard_columns shards,
  /// because a matrix product over a few columns runs far below the BLAS's peak.
  std::size_t min_shard_columns = 16;
  /// The batch the data-set overload of train_step gathered, overwritten each step.
  Batch<T> batch;
  /// The processes training together (layercache/distributed.hpp), or null for this
  /// process alone. With a group, the data-set train_step trains on this rank's share of
  /// the range (rank_share), and every step sums the gradients across the ranks, weighted
  /// by the shares' sizes, so every rank ends the step with the params one process would
  /// have after the whole batch; the step's loss and correct count are the whole batch's.
  Collective* group = nullptr;
  /// With a group: the gradients travel in buckets of at most this many bytes, each summed
  /// across the ranks as soon as backward has finished its gradients (while the layers
  /// before them still run). Smaller buckets start earlier; each costs one latency.
  std::size_t bucket_bytes = std::size_t(1) << 20;
  /// With a group: average the new state (running statistics) across the ranks after each
  /// step, weighted by the shares' sizes, so every rank keeps the same state.
  bool sync_state = true;
  /// The shards' threads and buffers (internal).
  detail::ShardsHandle<T> shards{};
  /// The buffers of the sum across processes (internal).
  detail::ExchangeHandle<T> exchange{};
};

/// What one training step measured.
struct StepResult {
  /// Loss on the batch (before the update).
  double loss = 0;
  /// Number of samples whose arg-max output equals the label (0 without labels).
  std::size_t correct = 0;
};

/// One optimization step on one batch: forward (training mode), loss, backward, update.
/// Everything is checked before params change: a bad batch (wrong shape, label out of
/// range, NaN with ctx.check_finite) throws and leaves params, state and optimizer state as
/// they were. The state is replaced by the training forward's new state, if any. `targets`
/// are the batch's labels (arma::uvec) or target matrix, either passed as is.
template <class T>
StepResult train_step(const Layer& network, Tree<T>& params, Tree<T>& state,
                      const Optimizer& optimizer, OptState<T>& opt_state, const Loss& loss,
                      const arma::Mat<T>& x, const Shape& x_shape, const TargetsArg<T>& targets,
                      const Needs& needs, const Context& ctx, StepWorkspace<T>& workspace);

/// One training step on one batch of a data set, the samples of `range` in plan.order:
/// copy_batch into workspace.batch, then train_step on it, with the same result. With
/// several threads each shard copies its own samples on its own thread, so gathering the
/// batch runs in parallel too. A bad range or sample index throws (as copy_batch) before
/// anything changes. fit() trains this way.
template <class T>
StepResult train_step(const Layer& network, Tree<T>& params, Tree<T>& state,
                      const Optimizer& optimizer, OptState<T>& opt_state, const Loss& loss,
                      const Dataset<T>& data, const BatchPlan& plan, const BatchRange& range,
                      const Needs& needs, const Context& ctx, StepWorkspace<T>& workspace);

/// How fit reports progress.
enum class Progress {
  /// A progress bar when the log stream is a terminal, plain lines otherwise.
  automatic,
  /// A progress bar with ETA and running loss, redrawn in place.
  bar,
  /// One plain line per epoch.
  lines,
  /// Nothing.
  silent,
};

/// The metrics of one epoch. Metrics that were not measured are NaN.
struct EpochLog {
  /// Epoch number, from 1.
  std::size_t epoch = 0;
  /// Mean training loss over the epoch's batches (weighted by batch size).
  double loss = std::numeric_limits<double>::quiet_NaN();
  /// Training accuracy over the epoch (labels only).
  double accuracy = std::numeric_limits<double>::quiet_NaN();
  /// Loss on the validation data.
  double val_loss = std::numeric_limits<double>::quiet_NaN();
  /// Accuracy on the validation data (labels only).
  double val_accuracy = std::numeric_limits<double>::quiet_NaN();
  /// Wall-clock seconds of the epoch (training and validation).
  double seconds = 0;
  /// Number of training samples seen.
  std::size_t samples = 0;

  /// The metric called `name` ("loss", "accuracy", "val_loss", "val_accuracy",
  /// "seconds"); throws ConfigError listing the names otherwise.
  double get(const std::string& name) const;
};

/// What fit returns: one log per epoch, and why training stopped.
struct History {
  /// The epochs run, in order.
  std::vector<EpochLog> epochs;
  /// True when a callback stopped training before the last epoch.
  bool stopped_early = false;
  /// The callback's reason for stopping (empty otherwise).
  std::string stop_reason;
  /// Mistakes fit flagged, each once, also printed as "warning: ..." unless progress is
  /// silent: an output activation the loss applies again (Softmax before
  /// SoftmaxCrossEntropy), a loss that explodes in the first steps (docs/training.md).
  std::vector<std::string> warnings;

  /// CSV text with a header row: epoch,loss,accuracy,val_loss,val_accuracy,seconds.
  std::string csv() const;
  /// Writes csv() to `path` atomically (a temporary file renamed over the target);
  /// throws IoError.
  void write_csv(const std::string& path) const;
};

template <class T>
struct TrainState;  // layercache/train_state.hpp

/// What a callback sees after each epoch and may act on.
template <class T>
struct FitContext {
  /// The network being trained.
  const Layer& network;
  /// The params (a callback may restore a copy, e.g. early stopping's best params).
  Tree<T>& params;
  /// The state.
  Tree<T>& state;
  /// The optimizer state.
  OptState<T>& opt_state;
  /// The history so far, including this epoch.
  const History& history;
  /// Set to true to stop after this epoch.
  bool stop = false;
  /// Why (shown in the progress output and the history).
  std::string stop_reason;
  /// The whole run, its epoch counter and history including this epoch (what
  /// save_checkpoints saves); params, state and opt_state above are its members.
  const TrainState<T>* run = nullptr;
  /// The processes training together (FitOptions::group), or null. Callbacks run on every
  /// rank with the same history; one that writes files writes them on rank 0 only (as
  /// save_checkpoints does). A stop on any rank stops every rank.
  const Collective* group = nullptr;
};

template <class T>
struct FitOptions;

/// What fit knows before its first epoch, shown to each callback's check
/// (Callback::before_training).
template <class T>
struct FitStart {
  /// The network to be trained.
  const Layer& network;
  /// The params training starts from.
  const Tree<T>& params;
  /// The state training starts from.
  const Tree<T>& state;
  /// The training data.
  const Dataset<T>& train;
  /// fit's options: epochs, batch_size, validation (null without validation data), ...
  const FitOptions<T>& options;
  /// Batches per epoch.
  std::size_t batches = 0;
};

/// What fit runs for a callback: a function after every epoch, and optionally a check once
/// before training starts, which throws (ConfigError) when the callback cannot work in this
/// run, before any step changes anything. Any callable taking (const EpochLog&,
/// FitContext<T>&) converts to a Callback without a check:
///   options.callbacks.push_back([](const EpochLog& log, FitContext<float>& ctx) { ... });
template <class T>
class Callback {
 public:
  /// The function run after every epoch.
  using AfterEpoch = std::function<void(const EpochLog&, FitContext<T>&)>;
  /// The check run once before training starts.
  using BeforeTraining = std::function<void(const FitStart<T>&)>;

  /// A callback running `after_epoch` after every epoch, without a check. An empty function
  /// (a null std::function or function pointer) throws ConfigError.
  template <class F, class = std::enable_if_t<std::conjunction_v<
                         std::negation<std::is_same<std::decay_t<F>, Callback>>,
                         std::is_invocable_r<void, F&, const EpochLog&, FitContext<T>&>>>>
  Callback(F&& after_epoch)  // NOLINT(google-explicit-constructor): any such callable is one
      : Callback(AfterEpoch(std::forward<F>(after_epoch)), BeforeTraining()) {}
  /// A callback running `after_epoch` after every epoch and, when not empty,
  /// `before_training` once before fit's first step. An empty `after_epoch` throws
  /// ConfigError.
  Callback(AfterEpoch after_epoch, BeforeTraining before_training)
      : after_epoch_(std::move(after_epoch)), before_training_(std::move(before_training)) {
    if (!after_epoch_) throw ConfigError("a callback needs a function to run after every epoch");
  }

  /// Runs the check, if any; fit calls it once, after its own checks and before the first
  /// step.
  void before_training(const FitStart<T>& start) const {
    if (before_training_) before_training_(start);
  }
  /// Runs the function; fit calls it after every epoch.
  void operator()(const EpochLog& log, FitContext<T>& fit) const { after_epoch_(log, fit); }

 private:
  AfterEpoch after_epoch_;
  BeforeTraining before_training_;
};

/// Options of early_stopping.
struct EarlyStoppingOptions {
  /// The metric watched: "val_loss", "loss", "val_accuracy" or "accuracy". Losses must
  /// decrease, accuracies increase.
  std::string monitor = "val_loss";
  /// Epochs without improvement before stopping.
  std::size_t patience = 3;
  /// Smallest change that counts as an improvement.
  double min_delta = 0;
  /// Put back the params (and state) of the best epoch when stopping.
  bool restore_best = true;
};

/// A callback that stops training when the monitored metric has not improved for
/// `patience` epochs. An unknown monitor throws ConfigError here; a monitor the run does not
/// measure (val_loss or val_accuracy without validation data, an accuracy without labels)
/// throws ConfigError from its check, before fit trains.
template <class T>
Callback<T> early_stopping(const EarlyStoppingOptions& options = {});

/// Settings of fit.
template <class T = float>
struct FitOptions {
  /// Passes over the training data.
  std::size_t epochs = 10;
  /// Samples per mini-batch.
  std::size_t batch_size = 32;
  /// Seed of the shuffling and of layers that draw (dropout).
  std::uint64_t seed = 0;
  /// Shuffle the samples every epoch.
  bool shuffle = true;
  /// Leave out a final batch smaller than batch_size.
  bool drop_last = false;
  /// Data evaluated after every epoch (not owned; may be null).
  const Dataset<T>* validation = nullptr;
  /// How progress is reported.
  Progress progress = Progress::automatic;
  /// Where progress goes; null means std::cerr.
  std::ostream* log = nullptr;
  /// Glob patterns of params to keep fixed ("encoder/*"); their gradients are not computed.
  std::vector<std::string> freeze{};
  /// Check every activation for NaN/Inf (slower; names the first layer where one appears).
  bool check_finite = false;
  /// Called after every epoch, in order; their checks run once before training starts.
  std::vector<Callback<T>> callbacks{};
  /// Batch size of the validation pass.
  std::size_t eval_batch_size = 1024;
  /// Threads each training step shares its work across (StepWorkspace::threads), and that
  /// the validation pass deals its batches to; 1 runs everything on the calling thread.
  std::size_t threads = 1;
  /// How a training step shares its work between the threads (StepWorkspace::split).
  Split split = Split::automatic;
  /// The processes training together (layercache/distributed.hpp), or null for this
  /// process alone. With a group, batch_size is each rank's: every epoch is shuffled from
  /// the run's stream (broadcast from rank 0 at the start, so the same on every rank), cut
  /// into batches of batch_size × ranks samples, and each rank trains on its share of each
  /// batch, its gradients summed across the ranks; validation is dealt out to the ranks
  /// too, and the metrics, the history and every callback's view are the whole group's.
  /// Progress is printed by rank 0 only.
  Collective* group = nullptr;
  /// With a group: bytes per gradient bucket (StepWorkspace::bucket_bytes).
  std::size_t bucket_bytes = std::size_t(1) << 20;
  /// With a group: average the state across the ranks after each step
  /// (StepWorkspace::sync_state).
  bool sync_state = true;
};

/// Trains `network` on `train`: epochs of shuffled mini-batches, each a train_step, with
/// progress, validation, the optimizer's report and the callbacks after every epoch; returns
/// the history. The params, the data and every callback's check are checked before anything
/// runs. opt_state is updated in place, so training can resume where it stopped. This is
/// fit on a TrainState (layercache/train_state.hpp) made of params, state, opt_state and
/// Rng(options.seed), run for options.epochs epochs. What fit does, step by step:
/// docs/training.md, "fit".
template <class T>
History fit(const Layer& network, Tree<T>& params, Tree<T>& state, const Optimizer& optimizer,
            OptState<T>& opt_state, const Loss& loss, const Dataset<T>& train,
            const FitOptions<T>& options = {});

/// fit with a fresh optimizer state.
template <class T>
History fit(const Layer& network, Tree<T>& params, Tree<T>& state, const Optimizer& optimizer,
            const Loss& loss, const Dataset<T>& train, const FitOptions<T>& options = {});

/// Loss and accuracy of a model on a data set.
struct Metrics {
  /// Mean loss over the samples.
  double loss = std::numeric_limits<double>::quiet_NaN();
  /// Fraction of samples whose arg-max output equals the label (NaN without labels).
  double accuracy = std::numeric_limits<double>::quiet_NaN();
  /// Number of samples evaluated.
  std::size_t samples = 0;
};

/// Loss and accuracy on `data`, computed on the inference path (no caches) in batches of
/// batch_size, dealt out to `threads` threads (docs/training.md, "evaluate and predict").
/// With a group of processes (layercache/distributed.hpp), each rank evaluates its share of
/// `data` (rank_share) and every rank returns the metrics of the whole data set; an error on
/// one rank is thrown on every rank (check_all).
template <class T>
Metrics evaluate(const Layer& network, const Tree<T>& params, const Tree<T>& state,
                 const Loss& loss, const Dataset<T>& data, std::size_t batch_size = 1024,
                 std::size_t threads = 1, Collective* group = nullptr);

/// The network's outputs for x (samples of shape x_shape), on the inference path in batches
/// of batch_size, dealt out to `threads` threads (docs/training.md, "evaluate and
/// predict"). The outputs equal a one-thread pass.
template <class T>
arma::Mat<T> predict(const Layer& network, const Tree<T>& params, const Tree<T>& state,
                     const arma::Mat<T>& x, const Shape& x_shape, std::size_t batch_size = 1024,
                     std::size_t threads = 1);

/// predict() on an Armadillo expression (`test.x.cols(0, 99)`), evaluated once.
template <class T, class Expr>
arma::Mat<T> predict(const Layer& network, const Tree<T>& params, const Tree<T>& state,
                     const arma::Base<T, Expr>& x, const Shape& x_shape,
                     std::size_t batch_size = 1024, std::size_t threads = 1) {
  return predict(network, params, state, arma::Mat<T>(x.get_ref()), x_shape, batch_size, threads);
}

}  // namespace layercache
