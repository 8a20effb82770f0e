// A training run as one value: TrainState as a tree and back, a fresh run, its short
// train_step, and saving and loading it as one checkpoint.
#include "layercache/train_state.hpp"

#include <array>
#include <cmath>
#include <utility>

#include "layercache/checkpoint.hpp"
#include "../word_pieces.hpp"

namespace layercache {
namespace {

// The entries of a saved run, in the order they are saved.
constexpr std::array<const char*, 7> run_entries = {"params", "state", "opt",    "rng",
                                                    "step",   "epoch", "history"};

// The rows of the history leaf, one column per epoch.
constexpr std::size_t history_rows = 7;

template <class T>
Tree<T> counter_leaf(std::int64_t value) {
  const auto word = static_cast<std::uint64_t>(value);
  return Tree<T>(detail::words_to_pieces<T>(&word, 1));
}

template <class T>
std::int64_t counter_from(const Tree<T>& leaf, const char* name) {
  try {
    if (!leaf.is_leaf()) throw DataError("expected a counter: a (4 × 1) leaf, found a branch");
    std::uint64_t word = 0;
    detail::pieces_to_words(leaf.value(), &word, 1, "a counter");
    if (word > std::uint64_t(INT64_MAX))
      throw DataError("the counter " + std::to_string(word) + " is over 2^63 - 1");
    return static_cast<std::int64_t>(word);
  } catch (Error& e) {
    e.prepend_path(name);
    throw;
  }
}

template <class T>
Tree<T> history_leaf(const History& history) {
  arma::Mat<T> table(history_rows, history.epochs.size());
  for (std::size_t i = 0; i < history.epochs.size(); ++i) {
    const EpochLog& e = history.epochs[i];
    const double column[history_rows] = {double(e.epoch), double(e.samples), e.loss, e.accuracy,
                                         e.val_loss, e.val_accuracy, e.seconds};
    for (std::size_t r = 0; r < history_rows; ++r) table(r, i) = T(column[r]);
  }
  return Tree<T>(std::move(table));
}

template <class T>
History history_from(const Tree<T>& leaf) {
  History history;
  try {
    if (!leaf.is_leaf() || leaf.value().n_rows != history_rows)
      throw DataError("expected a (7 × epochs) leaf: rows epoch, samples, loss, accuracy, "
                      "val_loss, val_accuracy, seconds");
    const arma::Mat<T>& table = leaf.value();
    for (std::size_t i = 0; i < table.n_cols; ++i) {
      for (std::size_t r = 0; r < 2; ++r)  // epoch and samples count
        if (!(table(r, i) >= T(0) && std::floor(table(r, i)) == table(r, i)))
          throw DataError("column " + std::to_string(i) + ", row " + std::to_string(r) +
                          " is not a whole number >= 0");
      EpochLog e;
      e.epoch = std::size_t(table(0, i));
      e.samples = std::size_t(table(1, i));
      e.loss = double(table(2, i));
      e.accuracy = double(table(3, i));
      e.val_loss = double(table(4, i));
      e.val_accuracy = double(table(5, i));
      e.seconds = double(table(6, i));
      history.epochs.push_back(e);
    }
  } catch (Error& e) {
    e.prepend_path("history");
    throw;
  }
  return history;
}

// The small leaves of a run (rng, step, epoch, history) with the big trees, as the named
// trees of a checkpoint; `leaves` holds the small ones while the names point at them.
template <class T>
NamedTrees<T> named_entries(const TrainState<T>& run, std::array<Tree<T>, 4>& leaves) {
  leaves = {rng_to_tree<T>(run.rng), counter_leaf<T>(run.step), counter_leaf<T>(run.epoch),
            history_leaf<T>(run.history)};
  return {{run_entries[0], &run.params}, {run_entries[1], &run.state},
          {run_entries[2], &run.opt.tree()}, {run_entries[3], &leaves[0]},
          {run_entries[4], &leaves[1]},      {run_entries[5], &leaves[2]},
          {run_entries[6], &leaves[3]}};
}

template <class T>
void save_run(const std::string& path, const TrainState<T>& run, const std::string& metadata) {
  std::array<Tree<T>, 4> leaves;
  const NamedTrees<T> trees = named_entries(run, leaves);
  save_checkpoint(path, trees, {.epoch = run.epoch, .step = run.step, .metadata = metadata});
}

}  // namespace

template <class T>
Tree<T> TrainState<T>::tree() const {
  std::array<Tree<T>, 4> leaves;
  Tree<T> out;
  for (const auto& [name, tree] : named_entries(*this, leaves)) out.add(name, *tree);
  return out;
}

template <class T>
TrainState<T> TrainState<T>::from_tree(const Tree<T>& tree) {
  std::string names;
  for (const char* name : run_entries) names += std::string(names.empty() ? "" : ", ") + name;
  if (tree.is_leaf()) throw DataError("a saved training run is a branch with the entries " + names);
  for (const char* name : run_entries)
    if (!tree.find(name))
      throw DataError("a saved training run has the entries " + names + "; '" + name +
                      "' is missing");
  TrainState run;
  run.params = tree.at("params");
  run.state = tree.at("state");
  run.opt = OptState<T>(tree.at("opt"));
  try {
    run.rng = rng_from_tree(tree.at("rng"));
  } catch (Error& e) {
    e.prepend_path("rng");
    throw;
  }
  run.step = counter_from(tree.at("step"), "step");
  run.epoch = counter_from(tree.at("epoch"), "epoch");
  run.history = history_from(tree.at("history"));
  return run;
}

template <class T>
TrainState<T> init_train_state(const Layer& network, const Shape& input_shape,
                               const Optimizer& optimizer, const Initializer& initializer,
                               std::uint64_t seed) {
  TrainState<T> run;
  run.rng = Rng(seed);
  run.params = network.init<T>(input_shape, initializer, run.rng);
  run.state = network.init_state<T>(input_shape);
  run.opt = optimizer.init(run.params);
  return run;
}

namespace {

// Runs `step(needs, ctx)`, a 12-argument train_step on the run, with the settings of
// `options`, and counts it.
template <class T, class Step>
StepResult step_run(TrainState<T>& run, const StepOptions& options, const Step& step) {
  run.workspace.threads = options.threads;
  run.workspace.split = options.split;
  run.workspace.group = options.group;
  run.workspace.bucket_bytes = options.bucket_bytes;
  run.workspace.sync_state = options.sync_state;
  Needs needs;
  needs.input = false;
  needs.frozen = options.frozen;
  Context ctx;
  ctx.mode = Mode::train;
  ctx.rng = &run.rng;
  ctx.check_finite = options.check_finite;
  const StepResult result = step(needs, ctx);
  ++run.step;
  return result;
}

}  // namespace

template <class T>
StepResult train_step(const Layer& network, TrainState<T>& run, const Optimizer& optimizer,
                      const Loss& loss, const Dataset<T>& data, const BatchPlan& plan,
                      const BatchRange& range, const StepOptions& options) {
  return step_run(run, options, [&](const Needs& needs, const Context& ctx) {
    return train_step(network, run.params, run.state, optimizer, run.opt, loss, data, plan,
                      range, needs, ctx, run.workspace);
  });
}

template <class T>
StepResult train_step(const Layer& network, TrainState<T>& run, const Optimizer& optimizer,
                      const Loss& loss, const Dataset<T>& batch, const StepOptions& options) {
  return step_run(run, options, [&](const Needs& needs, const Context& ctx) {
    const Targets<T> targets =
        batch.has_labels() ? Targets<T>(batch.labels) : Targets<T>(batch.targets);
    return train_step(network, run.params, run.state, optimizer, run.opt, loss, batch.x,
                      batch.shape, targets, needs, ctx, run.workspace);
  });
}

void save_train_state(const std::string& path, const TrainState<float>& run,
                      const std::string& metadata) {
  save_run(path, run, metadata);
}

void save_train_state(const std::string& path, const TrainState<double>& run,
                      const std::string& metadata) {
  save_run(path, run, metadata);
}

template <class T>
TrainState<T> load_train_state(const std::string& path) {
  Checkpoint<T> checkpoint = load_checkpoint<T>(path);
  try {
    return TrainState<T>::from_tree(checkpoint.trees);
  } catch (const Error& e) {
    throw DataError("not a saved training run: " + std::string(e.what()), path);
  }
}

#define LAYERCACHE_INSTANTIATE_TRAIN_STATE(T)                                                  \
  template Tree<T> TrainState<T>::tree() const;                                                \
  template TrainState<T> TrainState<T>::from_tree(const Tree<T>&);                             \
  template TrainState<T> init_train_state(const Layer&, const Shape&, const Optimizer&,        \
                                          const Initializer&, std::uint64_t);                  \
  template StepResult train_step(const Layer&, TrainState<T>&, const Optimizer&, const Loss&,  \
                                 const Dataset<T>&, const BatchPlan&, const BatchRange&,       \
                                 const StepOptions&);                                          \
  template StepResult train_step(const Layer&, TrainState<T>&, const Optimizer&, const Loss&,  \
                                 const Dataset<T>&, const StepOptions&);                       \
  template TrainState<T> load_train_state(const std::string&);

LAYERCACHE_INSTANTIATE_TRAIN_STATE(float)
LAYERCACHE_INSTANTIATE_TRAIN_STATE(double)

}  // namespace layercache
