// A training run as one value (docs/training.md, "A run as one value"): the params, the
// state, the optimizer state, the random stream, the step and epoch counters and the history
// travel together in a TrainState. One call saves it (atomically, as any checkpoint), one
// loads it, a short train_step advances it by a batch, and fit continues it, so a run saved
// after epoch k and resumed ends bit-identical to one never interrupted.
//
//   TrainStateF run = init_train_state<float>(net, train.shape, opt, he_normal(), /*seed=*/1);
//   fit(net, run, opt, loss, train, {.epochs = 10, .callbacks = {save_checkpoints<float>({.directory = "ckpt"})}});
//   TrainStateF resumed = load_train_state<float>(latest_checkpoint("ckpt"));
//   fit(net, resumed, opt, loss, train, {.epochs = 20});   // epochs 11..20
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "layercache/initializers.hpp"
#include "layercache/training.hpp"

namespace layercache {

/// A run's StepWorkspace, which copies as settings only: a copy has the same threads, split
/// and min_shard_columns, and empty buffers of its own (filled on its first step), so a
/// TrainState copies as a value.
template <class T = float>
struct RunWorkspace : StepWorkspace<T> {
  RunWorkspace() = default;
  /// The settings of `other`, fresh buffers.
  RunWorkspace(const RunWorkspace& other) { copy_settings(other); }
  /// Takes `other`'s settings and keeps this workspace's buffers.
  RunWorkspace& operator=(const RunWorkspace& other) {
    copy_settings(other);
    return *this;
  }
  /// Takes over the buffers.
  RunWorkspace(RunWorkspace&&) = default;
  /// Takes over the buffers.
  RunWorkspace& operator=(RunWorkspace&&) = default;
  ~RunWorkspace() = default;

 private:
  void copy_settings(const RunWorkspace& other) {
    this->threads = other.threads;
    this->split = other.split;
    this->min_shard_columns = other.min_shard_columns;
    this->group = other.group;
    this->bucket_bytes = other.bucket_bytes;
    this->sync_state = other.sync_state;
  }
};

/// Everything a training run changes, as one value. Saved by path (TrainState::tree):
///   params/<network paths>     the trainable tensors
///   state/<network paths>      the non-trainable tensors (batch statistics)
///   opt/<transform>/...        the optimizer state (count, moments, a schedule's position)
///   rng                        (16 × 1) the random stream (rng_to_tree): shuffling, dropout
///   step, epoch                (4 × 1) each: optimizer steps and epochs completed, as 16-bit
///                              pieces (exact in float too; the checkpoint's root attributes
///                              `step` and `epoch` hold them as plain integers)
///   history                    (7 × epochs): per epoch, the rows epoch, samples, loss,
///                              accuracy, val_loss, val_accuracy, seconds (NaN: not measured)
/// The workspace is not part of the value: it holds buffers and threads a step reuses.
template <class T = float>
struct TrainState {
  /// The trainable tensors.
  Tree<T> params;
  /// The non-trainable tensors (an empty branch per layer for a network without state).
  Tree<T> state;
  /// The optimizer state.
  OptState<T> opt;
  /// The random stream of the run: fit shuffles from it at each epoch's start, and layers
  /// that draw (dropout) draw from it.
  Rng rng;
  /// Optimizer steps taken.
  std::int64_t step = 0;
  /// Epochs completed (fit's epochs; a custom loop counts its own).
  std::int64_t epoch = 0;
  /// The epochs fit has run, over all its calls on this run.
  History history;
  /// Buffers and threads reused from step to step (not saved; a copy starts its own).
  RunWorkspace<T> workspace;

  /// The run as one tree of the paths above (the workspace left out).
  Tree<T> tree() const;
  /// The run saved as tree(): throws DataError when `tree` lacks one of the entries (the
  /// message lists them) or an entry is malformed (the rng, the counters, the history's
  /// rows), naming its path.
  static TrainState from_tree(const Tree<T>& tree);
};

/// A run in single precision.
using TrainStateF = TrainState<float>;
/// A run in double precision.
using TrainStateD = TrainState<double>;

/// A fresh run: Rng(seed) draws the params (network.init with `initializer`), the state is
/// network.init_state, the optimizer state optimizer.init, and the run's stream continues
/// from where the initialization left Rng(seed). Counters and history start empty.
template <class T = float>
TrainState<T> init_train_state(const Layer& network, const Shape& input_shape,
                               const Optimizer& optimizer, const Initializer& initializer,
                               std::uint64_t seed);

/// The settings of a step that rarely change (train_step on a TrainState).
struct StepOptions {
  /// Threads the step shares its work across (StepWorkspace::threads).
  std::size_t threads = 1;
  /// How the threads share it (StepWorkspace::split).
  Split split = Split::automatic;
  /// Check every activation for NaN/Inf, naming the first layer where one appears.
  bool check_finite = false;
  /// Params whose gradients are not computed and which stay fixed (see freeze()); not
  /// owned, may be null.
  const FrozenSet* frozen = nullptr;
  /// The processes training together, or null (StepWorkspace::group): the step trains on
  /// this rank's share of the batch and sums the gradients across the ranks.
  Collective* group = nullptr;
  /// With a group: bytes per gradient bucket (StepWorkspace::bucket_bytes).
  std::size_t bucket_bytes = std::size_t(1) << 20;
  /// With a group: average the state across the ranks (StepWorkspace::sync_state).
  bool sync_state = true;
};

/// One step of the run on the samples of `range` in plan.order of `data`: the 12-argument
/// train_step in training mode, drawing from run.rng, with run's workspace, no input
/// gradient; then run.step grows by one. Errors as that train_step's: a bad batch throws
/// and leaves the run as it was.
template <class T>
StepResult train_step(const Layer& network, TrainState<T>& run, const Optimizer& optimizer,
                      const Loss& loss, const Dataset<T>& data, const BatchPlan& plan,
                      const BatchRange& range, const StepOptions& options = {});

/// One step of the run on all of `batch` (its samples, shape and labels or targets).
template <class T>
StepResult train_step(const Layer& network, TrainState<T>& run, const Optimizer& optimizer,
                      const Loss& loss, const Dataset<T>& batch, const StepOptions& options = {});

/// Continues the run: trains epochs run.epoch + 1 .. options.epochs (none when the run is
/// there already), each a pass over `train` in an order shuffled from run.rng (or in order,
/// without shuffle), and returns run.history: every epoch the run has had. options.seed is
/// not used: the run's stream is. Interrupted after any epoch, saved, loaded and continued
/// with the same options, network and thread count, the run ends with the same params,
/// state, optimizer state and stream, bit for bit. Checks and progress as the other fit.
template <class T>
History fit(const Layer& network, TrainState<T>& run, const Optimizer& optimizer,
            const Loss& loss, const Dataset<T>& train, const FitOptions<T>& options = {});

/// Saves the run (run.tree()'s entries as the checkpoint's trees, run.step and run.epoch as
/// its root attributes, and `metadata`) to an HDF5 checkpoint at `path`, atomically, with
/// save_checkpoint's guarantees and errors.
void save_train_state(const std::string& path, const TrainState<float>& run,
                      const std::string& metadata = {});
/// Saves a double-precision run; see the float overload.
void save_train_state(const std::string& path, const TrainState<double>& run,
                      const std::string& metadata = {});

/// The run saved at `path`, errors as load_checkpoint's, and DataError (naming the file)
/// when the file is not a saved run (TrainState::from_tree). The optimizer state's values
/// are checked by the next update, as for any restored optimizer state.
template <class T>
TrainState<T> load_train_state(const std::string& path);

/// Options of save_checkpoints.
struct CheckpointOptions {
  /// Where the checkpoints go (made if missing): epoch-000001.h5, epoch-000002.h5, ... and
  /// best.h5.
  std::string directory;
  /// How many of the latest epoch-*.h5 files to keep (older ones are removed); at least 1.
  std::size_t keep_last = 3;
  /// When not empty, the metric ("loss", "accuracy", "val_loss", "val_accuracy") whose best
  /// epoch so far is also saved as best.h5. Losses must fall, accuracies rise.
  std::string monitor;
};

/// A fit callback that saves the run (save_train_state) after every epoch as
/// directory/epoch-NNNNNN.h5, keeps the last `keep_last` of them, and with a monitor keeps
/// the best epoch's run in best.h5 (the best so far is read from the run's history, so it
/// holds across a resume). A bad option throws ConfigError here; a monitor the run does not
/// measure throws ConfigError from its check, before fit trains (as early_stopping).
/// In a group of processes (FitOptions::group) rank 0 writes the files and every rank may
/// read them (load_train_state) to resume.
template <class T>
Callback<T> save_checkpoints(const CheckpointOptions& options);

/// The path of the epoch-NNNNNN.h5 file with the highest epoch in `directory`, or an empty
/// string when there is none (or no such directory).
std::string latest_checkpoint(const std::string& directory);

}  // namespace layercache
