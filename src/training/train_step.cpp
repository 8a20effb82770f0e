// One training step from the primitives: forward, loss, backward and update of one batch, on
// the calling thread, split into shards across worker threads (data parallelism), or with each
// layer's work split between them (docs/training.md, "Threads").
#include <algorithm>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <utility>
#include <vector>

#include "layercache/distributed.hpp"
#include "layercache/training.hpp"
#include "../batch_gather.hpp"
#include "../distributed/gradient_exchange.hpp"
#include "../optim/optimizer_access.hpp"
#include "../split_work.hpp"
#include "../vector_kernel.hpp"
#include "common.hpp"

namespace layercache {
namespace detail {

// Where the shards of one step meet to add up their partial sums (BatchReduction): each
// shard's call waits until all have arrived; the last to arrive adds the values in shard
// order and writes the total into every shard's values, so all receive the same bits.
class ShardBarrier {
 public:
  // Prepares a step of n shards (allocates only when n grows).
  void start(std::size_t n) {
    const std::lock_guard<std::mutex> lock(mutex_);
    n_ = n;
    arrived_ = 0;
    failed_ = false;
    slots_.assign(n, nullptr);
    counts_.assign(n, 0);
  }
  // Wakes every waiting shard, whose sum throws: a shard failed and will not arrive.
  void fail() {
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      failed_ = true;
    }
    changed_.notify_all();
  }
  template <class T>
  void sum(std::size_t shard, T* values, std::size_t count) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (failed_) throw_failed();
    slots_[shard] = values;
    counts_[shard] = count;
    const std::uint64_t generation = generation_;
    if (++arrived_ < n_) {
      changed_.wait(lock, [&] { return generation_ != generation || failed_; });
      if (generation_ == generation) throw_failed();
      return;
    }
    arrived_ = 0;
    if (std::any_of(counts_.begin(), counts_.end(), [&](std::size_t c) { return c != count; })) {
      failed_ = true;
      changed_.notify_all();
      throw ConfigError("the shards of a step summed different numbers of values over the "
                        "batch (every shard must make the same sum_over_batch calls)");
    }
    for (std::size_t i = 0; i < count; ++i) {
      T total = static_cast<T*>(slots_[0])[i];
      for (std::size_t k = 1; k < n_; ++k) total += static_cast<T*>(slots_[k])[i];
      for (std::size_t k = 0; k < n_; ++k) static_cast<T*>(slots_[k])[i] = total;
    }
    ++generation_;
    changed_.notify_all();
  }

 private:
  [[noreturn]] static void throw_failed() {
    throw ConfigError("another shard of this step failed before the sum over the batch");
  }
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<void*> slots_;         // per shard: its values
  std::vector<std::size_t> counts_;  // per shard: how many
  std::size_t n_ = 0, arrived_ = 0;
  std::uint64_t generation_ = 0;     // bumped when a sum is done
  bool failed_ = false;
};

// One shard's handle on the barrier: the BatchReduction in its Context and Needs.
class ShardSums final : public BatchReduction {
 public:
  ShardSums(ShardBarrier& barrier, std::size_t index, std::size_t shards) noexcept
      : barrier_(&barrier), index_(index), shards_(shards) {}
  std::size_t shards() const noexcept override { return shards_; }
  void sum(float* values, std::size_t n) override { barrier_->sum(index_, values, n); }
  void sum(double* values, std::size_t n) override { barrier_->sum(index_, values, n); }

 private:
  ShardBarrier* barrier_;
  std::size_t index_;
  std::size_t shards_;
};

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
  ShardBarrier barrier;                 // the sums over the batch (BatchNorm's statistics)
  std::vector<ShardSums> sums_of_shard; // per shard of the current step
};

template <class T>
void ShardsDeleter<T>::operator()(Shards<T>* shards) const noexcept {
  delete shards;
}

}  // namespace detail

namespace {

using detail::columns_view;
using detail::correct_predictions;
using detail::labels_view;
using detail::run_with_single_threaded_blas;
using detail::SingleThreadedBlas;

// Calls f(tensor) for every leaf of `tree`, depth first in order. Unlike Tree::for_each it
// builds no paths, which allocate once longer than a std::string holds in place
// ("block1/inner/dense1/weight"): a steady-state step must not.
template <class T, class F>
void for_each_leaf(Tree<T>& tree, const F& f) {
  if (tree.is_leaf()) return f(tree.value());
  for (std::size_t i = 0; i < tree.size(); ++i) for_each_leaf(tree.child(i), f);
}

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

// Number of shards a batch is split into. One (a one-pass step) with one thread, or with
// targets that do not match the batch (the one pass reports that error). A network with
// state is split too: its layers sum their statistics over the whole batch
// (BatchReduction), so every shard returns the one-pass state.
template <class T>
std::size_t shard_count(const StepWorkspace<T>& ws, const arma::Mat<T>& x,
                        const Targets<T>& targets) {
  const std::size_t columns = x.n_cols;
  if (ws.threads <= 1 || ws.split == Split::layers) return 1;
  if (targets.has_labels() ? targets.labels().n_elem != columns
                           : targets.matrix().n_cols != columns)
    return 1;
  const std::size_t by_size = columns / std::max<std::size_t>(ws.min_shard_columns, 1);
  return std::max<std::size_t>(1, std::min(ws.threads, by_size));
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
  sh.barrier.start(n);
  if (sh.sums_of_shard.size() != n || sh.sums_of_shard[0].shards() != n) {
    sh.sums_of_shard.clear();
    for (std::size_t i = 0; i < n; ++i) sh.sums_of_shard.emplace_back(sh.barrier, i, n);
  }

  auto shard_pass = [&](std::size_t i) {
    const std::size_t b = begin(i), e = begin(i + 1);
    source.gather(ws, b, e);
    const arma::Mat<T> xs = columns_view(x, b, e);
    Context c = ctx;
    c.executor = nullptr;  // the shard is itself one of the threads
    c.batch_reduction = &sh.sums_of_shard[i];
    Needs shard_needs = needs;
    shard_needs.executor = nullptr;
    shard_needs.batch_reduction = &sh.sums_of_shard[i];
    shard_needs.listener = nullptr;  // a shard's gradients are a part: the sum is announced
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
  auto pass = [&](std::size_t i) {
    if (i >= n) return;
    try {
      shard_pass(i);
    } catch (...) {
      sh.barrier.fail();  // the others must not wait for this shard's sums
      throw;
    }
  };
  if (!run_with_single_threaded_blas(sh.pool, pass)) return false;

  // The gradients' sum, each thread adding one slice of every leaf and checking that slice
  // of the total for NaN and Inf as it writes it.
  sh.sums.clear();
  sh.sizes.clear();
  sh.parts.clear();
  for_each_leaf(ws.backward.grads, [&](arma::Mat<T>& g) {
    sh.sums.push_back(g.memptr());
    sh.sizes.push_back(g.n_elem);
  });
  for (std::size_t k = 1; k < n; ++k)
    for_each_leaf(sh.extra[k - 1].backward.grads,
                  [&](const arma::Mat<T>& g) { sh.parts.push_back(g.memptr()); });
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

// How the update checks the gradients for NaN and Inf after a pass.
enum class GradsCheck {
  one_pass,     // scanned by the update on the calling thread
  on_threads,   // scanned by the update on the step's threads
  known_finite  // found finite while the shards' sum was written: not scanned again
};

// Forward, loss and backward of this process's batch from `source` (x and targets view the
// workspace's batch when it is a data set), the gradients left in ws.backward.grads.
template <class T>
StepResult local_pass(const Layer& network, const Tree<T>& params, const Tree<T>& state,
                      const Loss& loss, const arma::Mat<T>& x, const Shape& x_shape,
                      const Targets<T>& targets, const BatchSource<T>& source,
                      const Needs& needs, const Context& ctx, StepWorkspace<T>& ws,
                      GradsCheck& check) {
  StepResult result;
  const std::size_t n = shard_count(ws, x, targets);
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
  check = n == 1 && !split_layers ? GradsCheck::one_pass
          : grads_finite          ? GradsCheck::known_finite
                                  : GradsCheck::on_threads;
  return result;
}

// Number of values backward computes gradients for: the params not frozen.
template <class T>
std::size_t wanted_values(const Tree<T>& params, const FrozenSet* frozen) noexcept {
  if (frozen && frozen->all()) return 0;
  if (params.is_leaf()) return params.value().n_elem;
  std::size_t n = 0;
  for (std::size_t i = 0; i < params.size(); ++i)
    n += wanted_values(params.child(i), frozen ? frozen->child(params.name(i)) : nullptr);
  return n;
}

// The path of the leaf of `tree` whose data is at `data` (empty when none is).
template <class T>
std::string path_of_leaf(const Tree<T>& tree, const T* data) {
  std::string found;
  tree.for_each([&](const std::string& path, const arma::Mat<T>& m) {
    if (m.memptr() == data) found = path;
  });
  return found;
}

// The pass of a rank of a group: `prepare` (gathering the batch), local_pass on this rank's
// samples, then the gradients (and the new state, with sync_state) summed across the ranks,
// weighted by the ranks' sample counts: each rank's values are multiplied by its count as
// they enter the sum, and the sum is divided by the total. Backward announces each child's
// gradients as it finishes them (Needs::listener), so their buckets travel while it runs the
// children before. Whatever fails on any rank is thrown on every rank (check_all), after every
// rank has started every bucket.
template <class T, class Prepare>
StepResult exchanged_pass(const Layer& network, const Tree<T>& params, const Tree<T>& state,
                          const Loss& loss, const arma::Mat<T>& x, const Shape& x_shape,
                          const Targets<T>& targets, const BatchSource<T>& source,
                          const Prepare& prepare, const Needs& needs, const Context& ctx,
                          StepWorkspace<T>& ws, GradsCheck& check) {
  Collective& group = *ws.group;
  if (!ws.exchange.ptr) ws.exchange.ptr.reset(new detail::GradientExchange<T>());
  detail::GradientExchange<T>& exchange = *ws.exchange.ptr;
  const bool sync_state = ws.sync_state && state.n_tensors() != 0;
  StepResult result;
  std::exception_ptr outcome;
  std::size_t columns = 0;
  try {
    prepare();
    columns = x.n_cols;
  } catch (...) {
    outcome = std::current_exception();
  }
  exchange.begin(group, wanted_values(params, needs.frozen) + (sync_state ? state.count() : 0),
                 ws.bucket_bytes / sizeof(T), T(columns));
  // Each rank draws (dropout masks) from its own stream, split off a copy of the shared one.
  // The shared stream moves on by one split after a step in which some rank drew, and not
  // at all otherwise: it stays the same on every rank, and where nothing draws it follows
  // one process's stream (which decides the next epochs' orders) exactly.
  Rng rank_rng;
  Context rank_ctx = ctx;
  if (ctx.rng) {
    Rng copy = *ctx.rng;
    for (std::size_t r = 0; r <= group.rank(); ++r) rank_rng = copy.split();
    rank_ctx.rng = &rank_rng;
  }
  const Rng::State rank_start = rank_rng.state();
  if (!outcome) try {
      Needs announcing = needs;
      announcing.listener = &exchange;
      result = local_pass(network, params, state, loss, x, x_shape, targets, source, announcing,
                          rank_ctx, ws, check);
      exchange.add(ws.backward.grads);  // what backward did not announce
      if (sync_state) exchange.add(ws.forward.state);
      if (const T* bad = exchange.non_finite()) {
        std::string path = path_of_leaf(ws.backward.grads, bad);
        throw NumericError("this rank's gradient holds NaN or Inf (before the sum across ranks)",
                           path.empty() ? "state/" + path_of_leaf(ws.forward.state, bad)
                                        : "grads/" + path);
      }
    } catch (...) {
      outcome = std::current_exception();
    }
  double sums[4] = {result.loss * double(columns), double(result.correct), double(columns),
                    rank_rng.state() != rank_start ? 1.0 : 0.0};
  exchange.finish(outcome, sums, 4);  // throws on every rank when one failed
  if (ctx.rng && sums[3] != 0) ctx.rng->split();
  exchange.unpack(T(1.0 / sums[2]));
  result.loss = sums[0] / sums[2];
  result.correct = static_cast<std::size_t>(sums[1]);
  // The sum across ranks may hold what this rank's shards did not.
  if (check == GradsCheck::known_finite) check = GradsCheck::on_threads;
  return result;
}

// One step on a batch from `source` (x and targets view the workspace's batch when it is
// a data set, which `prepare` fills).
template <class T, class Prepare>
StepResult step_on(const Layer& network, Tree<T>& params, Tree<T>& state,
                   const Optimizer& optimizer, OptState<T>& opt_state, const Loss& loss,
                   const arma::Mat<T>& x, const Shape& x_shape, const Targets<T>& targets,
                   const BatchSource<T>& source, const Prepare& prepare, const Needs& needs,
                   const Context& ctx, StepWorkspace<T>& ws) {
  if (ws.threads == 0)
    throw ConfigError("train_step needs workspace.threads >= 1 (1 runs the step on the calling thread)");
  GradsCheck check = GradsCheck::one_pass;
  StepResult result;
  if (ws.group) {
    result = exchanged_pass(network, params, state, loss, x, x_shape, targets, source, prepare,
                            needs, ctx, ws, check);
  } else {
    prepare();
    result = local_pass(network, params, state, loss, x, x_shape, targets, source, needs, ctx,
                        ws, check);
  }
  // The update checks everything before changing anything, on the step's threads when it
  // has them; after a sharded pass that found the summed grads finite it skips only its own
  // scan of them. When that pass found NaN or Inf, the full update is what scans them again
  // and names the first bad entry.
  if (check == GradsCheck::one_pass)
    optimizer.update(params, ws.backward.grads, opt_state);
  else if (check == GradsCheck::known_finite)
    detail::OptimizerAccess::update_with_finite_grads(optimizer, params, ws.backward.grads,
                                                      opt_state, ws.shards.ptr->pool);
  else
    optimizer.update(params, ws.backward.grads, opt_state, ws.shards.ptr->pool);
  // The new state is handed over, not copied: the old state's buffers go to the workspace,
  // where the next step's forward writes into them. (With shards, the first shard's state,
  // which every shard computed alike from the whole batch's sums.)
  if (!ws.forward.state.empty()) std::swap(state, ws.forward.state);
  return result;
}

}  // namespace

template <class T>
StepResult train_step(const Layer& network, Tree<T>& params, Tree<T>& state,
                      const Optimizer& optimizer, OptState<T>& opt_state, const Loss& loss,
                      const arma::Mat<T>& x, const Shape& x_shape, const TargetsArg<T>& targets,
                      const Needs& needs, const Context& ctx, StepWorkspace<T>& ws) {
  return step_on(network, params, state, optimizer, opt_state, loss, x, x_shape, targets,
                 BatchSource<T>{}, [] {}, needs, ctx, ws);
}

template <class T>
StepResult train_step(const Layer& network, Tree<T>& params, Tree<T>& state,
                      const Optimizer& optimizer, OptState<T>& opt_state, const Loss& loss,
                      const Dataset<T>& data, const BatchPlan& plan, const BatchRange& range,
                      const Needs& needs, const Context& ctx, StepWorkspace<T>& ws) {
  // With a group, the range is the whole group's batch, and this rank trains on its share.
  if (ws.group && range.size() < ws.group->size())
    throw ConfigError("a batch of " + std::to_string(range.size()) + " samples cannot be shared by " +
                      std::to_string(ws.group->size()) +
                      " ranks: each needs at least one (drop_last leaves out a short last batch)");
  const BatchRange share = rank_share(range, ws.group);
  Batch<T>& batch = ws.batch;
  const Targets<T> targets = data.has_labels()          ? Targets<T>(batch.labels)
                             : data.targets_are_inputs ? Targets<T>(batch.x)
                                                       : Targets<T>(batch.targets);
  return step_on(
      network, params, state, optimizer, opt_state, loss, batch.x, data.shape, targets,
      BatchSource<T>{&data, &plan.order, share.begin},
      [&] {
        detail::prepare_batch(data, plan.order, share.begin, share.end, batch.x, batch.labels,
                              batch.targets);
      },
      needs, ctx, ws);
}

#define LAYERCACHE_INSTANTIATE_TRAIN_STEP(T)                                                   \
  template StepResult train_step(const Layer&, Tree<T>&, Tree<T>&, const Optimizer&,           \
                                 OptState<T>&, const Loss&, const arma::Mat<T>&, const Shape&, \
                                 const TargetsArg<T>&, const Needs&, const Context&,           \
                                 StepWorkspace<T>&);                                           \
  template StepResult train_step(const Layer&, Tree<T>&, Tree<T>&, const Optimizer&,           \
                                 OptState<T>&, const Loss&, const Dataset<T>&,                 \
                                 const BatchPlan&, const BatchRange&, const Needs&,            \
                                 const Context&, StepWorkspace<T>&);                           \
  template struct detail::ShardsDeleter<T>;

LAYERCACHE_INSTANTIATE_TRAIN_STEP(float)
LAYERCACHE_INSTANTIATE_TRAIN_STEP(double)

}  // namespace layercache
