// The optimizer as a chain of transforms: the checks (optimizer_checks.cpp) first, then the
// update, then params += u.
#include "layercache/optim/optimizer.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "optimizer_access.hpp"
#include "tree_walk.hpp"

namespace layercache {
namespace {

// ----- the update buffer mirrors the grads (empty leaves stay empty) ----------------------

template <class T>
void copy_into_buffer(const Tree<T>& grads, Tree<T>& buffer) {
  if (grads.is_leaf()) {
    if (!buffer.is_leaf()) buffer = Tree<T>(arma::Mat<T>());
    buffer.value() = grads.value();  // reuses the storage when the size is unchanged
    return;
  }
  bool same = !buffer.is_leaf() && buffer.size() == grads.size();
  for (std::size_t i = 0; same && i < grads.size(); ++i)
    same = buffer.name(i) == grads.name(i) && buffer.child(i).is_leaf() == grads.child(i).is_leaf();
  if (!same) {
    buffer = Tree<T>();
    for (std::size_t i = 0; i < grads.size(); ++i)
      buffer.add(grads.name(i), grads.child(i).is_leaf() ? Tree<T>(arma::Mat<T>()) : Tree<T>());
  }
  for (std::size_t i = 0; i < grads.size(); ++i) copy_into_buffer(grads.child(i), buffer.child(i));
}

// The slice-wise update keeps the state pointers of one slice in a fixed array.
constexpr int max_slice_entries = 16;
// Elements per slice: the slice's update (8 KB in float) stays in the L1 cache while
// every transform rewrites it.
constexpr std::size_t slice_size = 2048;

}  // namespace

namespace detail {
namespace {
template <class T>
void leaf_by_leaf(const Transform& transform, Tree<T>& updates, Tree<T>* const* state, int k,
                  const Tree<T>& params, std::int64_t step) {
  if (updates.is_leaf()) {
    arma::Mat<T>& u = updates.value();
    if (u.n_elem == 0) return;  // frozen
    T* at[max_slice_entries];
    for (int e = 0; e < k; ++e) at[e] = state[e]->value().memptr();
    transform.update_slice(Slice<T>{u.memptr(), at, params.value().memptr(), u.n_elem}, step);
    return;
  }
  for (std::size_t i = 0; i < updates.size(); ++i) {
    Tree<T>* children[max_slice_entries];
    for (int e = 0; e < k; ++e) children[e] = &state[e]->child(i);
    leaf_by_leaf(transform, updates.child(i), children, k, params.child(i), step);
  }
}
}  // namespace

template <class T>
void update_leaf_by_leaf(const Transform& transform, Tree<T>& updates, Tree<T>& state,
                         const Tree<T>& params, std::int64_t step) {
  const int k = transform.slice_entries();
  if (k < 0 || k > max_slice_entries) return;
  Tree<T>* entries[max_slice_entries];
  for (int e = 0; e < k; ++e) entries[e] = &state.child(static_cast<std::size_t>(e));
  leaf_by_leaf(transform, updates, entries, k, params, step);
}
template void update_leaf_by_leaf(const Transform&, Tree<float>&, Tree<float>&,
                                  const Tree<float>&, std::int64_t);
template void update_leaf_by_leaf(const Transform&, Tree<double>&, Tree<double>&,
                                  const Tree<double>&, std::int64_t);
}  // namespace detail

Optimizer::Optimizer(std::shared_ptr<const Transform> transform)
    : Optimizer(std::vector<std::shared_ptr<const Transform>>{std::move(transform)}) {}

Optimizer::Optimizer(std::vector<std::shared_ptr<const Transform>> transforms)
    : transforms_(std::move(transforms)) {
  for (std::size_t i = 0; i < transforms_.size(); ++i) {
    if (!transforms_[i]) throw ConfigError("an optimizer was given a null transform");
    const std::string kind = transforms_[i]->kind();
    std::size_t same_kind = 1;
    for (std::size_t j = 0; j < i; ++j) same_kind += transforms_[j]->kind() == kind;
    names_.push_back(same_kind == 1 ? kind : kind + std::to_string(same_kind));
  }
  slice_entries_ = 0;
  for (const auto& transform : transforms_) {
    const int k = transform->slice_entries();
    if (k < 0 || slice_entries_ + k > max_slice_entries) {
      slice_entries_ = -1;
      break;
    }
    slice_entries_ += k;
  }
}

Optimizer chain(std::vector<Optimizer> parts) {
  std::vector<std::shared_ptr<const Transform>> all;
  for (const auto& part : parts)
    all.insert(all.end(), part.transforms().begin(), part.transforms().end());
  return Optimizer(std::move(all));
}

std::string Optimizer::describe() const {
  std::string out = "chain(";
  for (std::size_t i = 0; i < transforms_.size(); ++i)
    out += (i ? ", " : "") + transforms_[i]->describe();
  return out + ")";
}

template <class T>
OptState<T> Optimizer::init(const Tree<T>& params) const {
  OptState<T> state;
  state.raw().add("count", Tree<T>(arma::Mat<T>(1, 1, arma::fill::zeros)));
  for (std::size_t i = 0; i < transforms_.size(); ++i)
    state.raw().add(names_[i], transforms_[i]->init(params));
  state.updates_ = zeros_like(params);  // sized now, so the first update need not allocate
  state.values_checked_ = true;         // fresh values: nothing to check
  return state;
}

template <class T>
double Optimizer::update(Tree<T>& params, const Tree<T>& grads, OptState<T>& state) const {
  return update_on(params, grads, state, nullptr, false);
}

template <class T>
double Optimizer::update(Tree<T>& params, const Tree<T>& grads, OptState<T>& state,
                         Executor& executor) const {
  return update_on(params, grads, state, &executor, false);
}

// The update, on the executor's threads when there is one and the chain is element-wise.
template <class T>
double Optimizer::update_on(Tree<T>& params, const Tree<T>& grads, OptState<T>& state,
                            Executor* executor, bool grads_known_finite) const {
  // Check everything first: nothing has changed if any of this throws.
  const std::int64_t step = check_update(params, grads, state, executor, grads_known_finite);
  state.values_checked_ = true;  // checked; an update from finite grads keeps them in range
  if (slice_entries_ >= 0) return update_by_slices(params, grads, state, step, executor);
  return update_by_trees(params, grads, state, step);
}

// The update of a chain with a transform that needs whole trees: u = grads, then every
// transform in order over the whole tree (they do not throw), then params += u.
template <class T>
double Optimizer::update_by_trees(Tree<T>& params, const Tree<T>& grads, OptState<T>& state,
                                  std::int64_t step) const {
  copy_into_buffer(grads, state.updates_);
  for (std::size_t i = 0; i < transforms_.size(); ++i)
    transforms_[i]->update(state.updates_, state.raw().child(i + 1), params, step);

  // Apply it: params += u on every non-frozen leaf.
  double norm_squared = 0.0;
  optim::for_each_update(
      [&](const arma::Mat<T>& u, arma::Mat<T>& p) {
        norm_squared += optim::add_and_sum_of_squares(u, p);
      },
      state.updates_, params);
  // A float count is exact up to 2^24 updates and then stays there (see docs/optimizers.md).
  state.raw().child(0).value()(0, 0) = static_cast<T>(step + 1);
  return std::sqrt(norm_squared);
}

// The update of a chain of element-wise transforms, one slice of slice_size elements at a
// time: u = g, every transform's update_slice, p += u, while u is in the L1 cache.
template <class T>
double Optimizer::update_by_slices(Tree<T>& params, const Tree<T>& grads, OptState<T>& state,
                                   std::int64_t step, Executor* executor) const {
  // Pointers of every non-frozen leaf: params, grads, then each transform's state entries.
  const std::size_t per_leaf = 2 + static_cast<std::size_t>(slice_entries_);
  std::vector<T*>& pointers = state.slice_pointers_;
  std::vector<std::size_t>& sizes = state.slice_sizes_;
  pointers.clear();
  sizes.clear();
  optim::for_each_update(
      [&](const arma::Mat<T>& g, arma::Mat<T>& p) {
        pointers.push_back(p.memptr());
        pointers.push_back(const_cast<T*>(g.memptr()));
        pointers.resize(pointers.size() + per_leaf - 2, nullptr);
        sizes.push_back(g.n_elem);
      },
      grads, params);
  std::size_t entry = 2;
  for (std::size_t i = 0; i < transforms_.size(); ++i) {
    const int k = transforms_[i]->slice_entries();
    for (int e = 0; e < k; ++e, ++entry) {
      std::size_t leaf = 0;
      optim::for_each_update(
          [&](const arma::Mat<T>&, arma::Mat<T>& m) { pointers[leaf++ * per_leaf + entry] = m.memptr(); },
          grads, state.raw().child(i + 1).child(static_cast<std::size_t>(e)));
    }
  }

  // Each task updates its share [n·i/tasks, n·(i+1)/tasks) of every leaf, slice by slice.
  struct Job {
    const Optimizer& optimizer;
    std::vector<T*>& pointers;
    std::vector<std::size_t>& sizes;
    std::vector<double>& norms;
    std::size_t per_leaf, tasks;
    std::int64_t step;
  };
  const auto task = [](void* context, std::size_t index) {
    const Job& job = *static_cast<const Job*>(context);
    T u[slice_size];
    T* at[max_slice_entries];
    double norm_squared = 0.0;
    for (std::size_t leaf = 0; leaf < job.sizes.size(); ++leaf) {
      T* const* ptr = job.pointers.data() + leaf * job.per_leaf;
      const std::size_t size = job.sizes[leaf];
      const std::size_t end = size * (index + 1) / job.tasks;
      for (std::size_t begin = size * index / job.tasks; begin < end; begin += slice_size) {
        const std::size_t n = std::min(slice_size, end - begin);
        std::copy_n(ptr[1] + begin, n, u);
        for (std::size_t e = 2; e < job.per_leaf; ++e) at[e - 2] = ptr[e] + begin;
        T* const* entries = at;
        for (const auto& transform : job.optimizer.transforms_) {
          transform->update_slice(Slice<T>{u, entries, ptr[0] + begin, n}, job.step);
          entries += transform->slice_entries();
        }
        norm_squared += optim::add_and_sum_of_squares(u, ptr[0] + begin, n);
      }
    }
    job.norms[index] = norm_squared;
  };
  const std::size_t tasks = executor ? std::max<std::size_t>(executor->size(), 1) : 1;
  std::vector<double>& norms = state.slice_norms_;
  norms.assign(tasks, 0.0);
  Job job{*this, pointers, sizes, norms, per_leaf, tasks, step};
  if (tasks == 1)
    task(&job, 0);
  else
    executor->run(task, &job);
  double norm_squared = 0.0;
  for (double part : norms) norm_squared += part;
  state.raw().child(0).value()(0, 0) = static_cast<T>(step + 1);
  return std::sqrt(norm_squared);
}

template <class T>
void Optimizer::report(OptState<T>& state, double value) const {
  check_state_layout(state);
  for (std::size_t i = 0; i < transforms_.size(); ++i) {
    try {
      transforms_[i]->report(state.raw().child(i + 1), value);
    } catch (Error& e) {
      e.prepend_path(names_[i]);
      throw;
    }
  }
}

template <class T>
double detail::OptimizerAccess::update_with_finite_grads(const Optimizer& optimizer,
                                                         Tree<T>& params, const Tree<T>& grads,
                                                         OptState<T>& state, Executor& executor) {
  return optimizer.update_on(params, grads, state, &executor, true);
}

#define LAYERCACHE_INSTANTIATE_OPTIMIZER(T)                                                  \
  template double detail::OptimizerAccess::update_with_finite_grads<T>(                      \
      const Optimizer&, Tree<T>&, const Tree<T>&, OptState<T>&, Executor&);                  \
  template OptState<T> Optimizer::init<T>(const Tree<T>&) const;                             \
  template double Optimizer::update<T>(Tree<T>&, const Tree<T>&, OptState<T>&) const;        \
  template double Optimizer::update<T>(Tree<T>&, const Tree<T>&, OptState<T>&, Executor&) const; \
  template void Optimizer::report<T>(OptState<T>&, double) const;

LAYERCACHE_INSTANTIATE_OPTIMIZER(float)
LAYERCACHE_INSTANTIATE_OPTIMIZER(double)

}  // namespace layercache
