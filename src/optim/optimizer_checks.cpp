// The optimizer's value checks, all made before an update changes anything: grads against
// params (structure and shapes; an empty leaf is frozen), NaN and Inf in the grads, the
// state's entries and count, and the values of a restored state.
#include <atomic>
#include <cmath>
#include <string>
#include <string_view>

#include "layercache/optim/optimizer.hpp"
#include "tree_walk.hpp"

namespace layercache {
namespace {

std::string dims(std::size_t rows, std::size_t cols) {
  return "(" + std::to_string(rows) + " × " + std::to_string(cols) + ")";
}

// ----- grads against params: same structure, except that a leaf may be empty (frozen) -----

template <class T>
bool grads_fit(const Tree<T>& params, const Tree<T>& grads) {
  if (params.is_leaf() != grads.is_leaf()) return false;
  if (params.is_leaf()) {
    const arma::Mat<T>& p = params.value();
    const arma::Mat<T>& g = grads.value();
    return g.n_elem == 0 || (g.n_rows == p.n_rows && g.n_cols == p.n_cols);
  }
  if (params.size() != grads.size()) return false;
  for (std::size_t i = 0; i < params.size(); ++i)
    if (params.name(i) != grads.name(i) || !grads_fit(params.child(i), grads.child(i))) return false;
  return true;
}

// Throws the error describing the first place where grads do not fit params (error path only).
template <class T>
void throw_grads_mismatch(const Tree<T>& params, const Tree<T>& grads, const std::string& path) {
  const std::string tail = " in the grads; params were not changed";
  if (params.is_leaf() != grads.is_leaf())
    throw ConfigError(std::string("expected a ") + (params.is_leaf() ? "tensor" : "branch") +
                          ", found a " + (grads.is_leaf() ? "tensor" : "branch") + tail,
                      path);
  if (params.is_leaf()) {
    const arma::Mat<T>& p = params.value();
    const arma::Mat<T>& g = grads.value();
    if (g.n_elem != 0 && (g.n_rows != p.n_rows || g.n_cols != p.n_cols))
      throw ShapeError("expected " + dims(p.n_rows, p.n_cols) + " (or empty when frozen), found " +
                           dims(g.n_rows, g.n_cols) + tail,
                       path);
    return;
  }
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (i >= grads.size() || params.name(i) != grads.name(i))
      throw ConfigError("expected entry '" + params.name(i) + "', found " +
                            (i < grads.size() ? "'" + grads.name(i) + "'" : std::string("nothing")) +
                            tail,
                        path);
    throw_grads_mismatch(params.child(i), grads.child(i), join_path(path, params.name(i)));
  }
  if (grads.size() > params.size())
    throw ConfigError("unexpected entry '" + grads.name(params.size()) + "'" + tail, path);
}

// ----- finiteness of the gradients, values of a restored state ------------------------------

// An element of a leaf: the leaf (null for none) and the element's index in it.
template <class T>
struct Element {
  const arma::Mat<T>* leaf = nullptr;
  std::size_t index = 0;
};

// The first element, depth first, that is NaN or ±Inf or, when `non_negative`, below 0.
template <class T>
Element<T> first_invalid(const Tree<T>& tree, bool non_negative) {
  if (tree.is_leaf()) {
    const arma::Mat<T>& m = tree.value();
    if (!non_negative && optim::all_finite(m)) return {};  // the fast scan of the grads
    for (std::size_t k = 0; k < m.n_elem; ++k)
      if (!std::isfinite(m(k)) || (non_negative && m(k) < 0)) return {&m, k};
    return {};
  }
  for (std::size_t i = 0; i < tree.size(); ++i)
    if (const Element<T> bad = first_invalid(tree.child(i), non_negative); bad.leaf) return bad;
  return {};
}

// "element (r, c)": where `bad` is in its leaf.
template <class T>
std::string position(const Element<T>& bad) {
  const std::size_t rows = bad.leaf->n_rows;
  return "element (" + std::to_string(bad.index % rows) + ", " + std::to_string(bad.index / rows) +
         ")";
}

// "NaN at element (r, c)" or "Inf at element (r, c)", for a NaN or ±Inf element.
template <class T>
std::string nonfinite_at(const Element<T>& bad) {
  return std::string(std::isnan((*bad.leaf)(bad.index)) ? "NaN" : "Inf") + " at " + position(bad);
}

template <class T>
bool path_of(const Tree<T>& tree, const arma::Mat<T>* leaf, std::string& path) {
  if (tree.is_leaf()) return &tree.value() == leaf;
  for (std::size_t i = 0; i < tree.size(); ++i) {
    const std::size_t length = path.size();
    path = join_path(path, tree.name(i));
    if (path_of(tree.child(i), leaf, path)) return true;
    path.resize(length);
  }
  return false;
}

// True when task `index` of `tasks` finds its share [n·index/tasks, n·(index+1)/tasks) of
// every leaf finite: the same shares the slice-wise update gives its tasks, so each thread
// checks the elements it is about to update.
template <class T>
bool share_finite(const Tree<T>& grads, std::size_t index, std::size_t tasks) {
  if (grads.is_leaf()) {
    const std::size_t n = grads.value().n_elem, begin = n * index / tasks;
    return optim::all_finite(grads.value().memptr() + begin, n * (index + 1) / tasks - begin);
  }
  for (std::size_t i = 0; i < grads.size(); ++i)
    if (!share_finite(grads.child(i), index, tasks)) return false;
  return true;
}

// Throws NumericError naming the first leaf of `grads` that holds NaN or Inf, and where.
// With an executor, its threads scan their shares first and the serial scan only runs to
// name what they found.
template <class T>
void check_finite(const Tree<T>& grads, Executor* executor) {
  if (executor && executor->size() > 1) {
    struct Job {
      const Tree<T>& grads;
      std::size_t tasks;
      std::atomic<bool> bad{false};
    } job{grads, executor->size()};
    executor->run(
        [](void* context, std::size_t index) {
          Job& j = *static_cast<Job*>(context);
          if (!share_finite(j.grads, index, j.tasks)) j.bad.store(true, std::memory_order_relaxed);
        },
        &job);
    if (!job.bad.load()) return;
  }
  const Element<T> bad = first_invalid(grads, false);
  if (!bad.leaf) return;
  std::string path;
  path_of(grads, bad.leaf, path);
  throw NumericError("gradient holds " + nonfinite_at(bad) + "; params were not changed", path);
}

std::string entry_list(const std::vector<std::string>& names) {
  std::string out = "count";
  for (const auto& name : names) out += ", " + name;
  return out;
}

}  // namespace

namespace detail {
template <class T>
void expect_empty_state(const Tree<T>& state, const Transform& transform) {
  if (state.is_leaf() || !state.empty())
    throw ConfigError("the " + transform.kind() + " transform has no state, but its entry holds "
                      "some; was this state made by another optimizer's init?");
}
template void expect_empty_state(const Tree<float>&, const Transform&);
template void expect_empty_state(const Tree<double>&, const Transform&);

template <class T>
void expect_state_values(const Tree<T>& values, std::string_view path, const char* non_negative) {
  const Element<T> bad = first_invalid(values, non_negative != nullptr);
  if (!bad.leaf) return;
  std::string at(path);
  path_of(values, bad.leaf, at);
  const T value = (*bad.leaf)(bad.index);
  const std::string tail = "; params and state were not changed";
  if (!std::isfinite(value))
    throw NumericError("the optimizer state holds " + nonfinite_at(bad) + tail, at);
  throw ConfigError("the optimizer state holds " + optim::format_number(static_cast<double>(value)) +
                        " at " + position(bad) + ", but " + non_negative + " must be ≥ 0" + tail,
                    at);
}
template void expect_state_values(const Tree<float>&, std::string_view, const char*);
template void expect_state_values(const Tree<double>&, std::string_view, const char*);
}  // namespace detail

void Transform::check_values(const Tree<float>& state) const { detail::expect_state_values(state); }
void Transform::check_values(const Tree<double>& state) const { detail::expect_state_values(state); }

template <class T>
std::int64_t Optimizer::check_state_layout(const Tree<T>& state) const {
  bool ok = !state.is_leaf() && state.size() == names_.size() + 1 && state.name(0) == "count";
  for (std::size_t i = 0; ok && i < names_.size(); ++i) ok = state.name(i + 1) == names_[i];
  if (!ok) {
    std::string found;
    for (std::size_t i = 0; i < state.size(); ++i) found += (i ? ", " : "") + state.name(i);
    throw ConfigError("the optimizer state does not belong to this optimizer: expected entries (" +
                      entry_list(names_) + "), found (" +
                      (state.is_leaf() ? std::string("a tensor")
                                       : found.empty() ? std::string("nothing") : found) +
                      "); make it with this optimizer's init");
  }
  return optim::expect_whole_number(state.child(0), "count", "the update count");
}

template <class T>
void Optimizer::check_transforms(const Tree<T>& state, const Tree<T>& params, std::int64_t step,
                                 bool values) const {
  for (std::size_t i = 0; i < transforms_.size(); ++i) {
    try {
      transforms_[i]->check(state.child(i + 1), params, step);
      if (values) transforms_[i]->check_values(state.child(i + 1));
    } catch (Error& e) {
      e.prepend_path(names_[i]);
      throw;
    }
  }
}

template <class T>
std::int64_t Optimizer::step_count(const OptState<T>& state) {
  const Tree<T>* count = state.is_leaf() ? nullptr : state.find("count");
  if (!count) throw ConfigError("the optimizer state has no 'count' entry; make it with init");
  return optim::expect_whole_number(*count, "count", "the update count");
}

template <class T>
std::int64_t Optimizer::check_update(const Tree<T>& params, const Tree<T>& grads,
                                     const OptState<T>& state, Executor* executor,
                                     bool grads_known_finite) const {
  if (!grads_fit(params, grads)) {
    throw_grads_mismatch(params, grads, {});
    throw ConfigError("the grads do not mirror the params; params were not changed");
  }
  const std::int64_t step = check_state_layout(state);
  // The values only when they are not known good: once after a state is restored.
  check_transforms(state, params, step, !state.values_checked_);
  if (!grads_known_finite) check_finite(grads, executor);
  return step;
}

#define LAYERCACHE_INSTANTIATE_OPTIMIZER_CHECKS(T)                                           \
  template std::int64_t Optimizer::check_state_layout<T>(const Tree<T>&) const;              \
  template std::int64_t Optimizer::check_update<T>(const Tree<T>&, const Tree<T>&,           \
                                                   const OptState<T>&, Executor*, bool) const; \
  template std::int64_t Optimizer::step_count<T>(const OptState<T>&);

LAYERCACHE_INSTANTIATE_OPTIMIZER_CHECKS(float)
LAYERCACHE_INSTANTIATE_OPTIMIZER_CHECKS(double)

}  // namespace layercache
