// Optimizers as chains of gradient transforms (docs/optimizers.md; the model is optax).
//
// A Transform is an (init, update) pair over trees of tensors:
//   init(params)                        -> the transform's state (a Tree<T>, possibly empty)
//   update(updates, state, params, step)   rewrites `updates` in place, advances `state`
// An Optimizer is a chain of transforms. Its update copies the gradients into an update
// buffer, passes the buffer through every transform in order, and adds the result to the
// params:  params += chain(grads). Because the result is *added*, a descent chain ends in a
// negative scale (scale_by_learning_rate multiplies by −learning_rate).
//
// The optimizer state is an OptState<T>: a Tree<T> with one entry per transform, plus the
// shared update count, so it can be checkpointed by path and training resumes exactly:
//   count                       (1 × 1)   updates applied so far
//   scale_by_adam/mu/<params>             first moments, mirroring the params tree
//   scale_by_adam/nu/<params>             second moments
//   scale_by_learning_rate                (empty: stateless)
// An optimizer sees params and grads trees, never layers. Frozen params have EMPTY gradient
// leaves (see prepare_grads); update skips them entirely.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "layercache/executor.hpp"
#include "layercache/tree.hpp"

namespace layercache {

class Optimizer;

/// The state of an optimizer: a Tree<T> (checkpoint it like any tree, by path) plus an
/// update buffer the size of the params that is reused from step to step and never saved.
/// Restore a checkpoint with OptState<T>(loaded_tree); update checks that it fits.
///
/// It also remembers whether its values are known to be good. A state made by
/// Optimizer::init is; a state wrapped from a tree, or handed out for writing by the
/// non-const tree(), is not, and the next Optimizer::update checks every value once (each
/// transform's Transform::check_values: no NaN or Inf, no negative second moment, ...)
/// before it changes anything; an update that succeeds marks the state good again. So a
/// restored state costs one pass over its values, and every other step none.
///
/// Every member that hands out something writable (the non-const value, child, at, find,
/// add and for_each, as well as tree()) counts as a write: after any of them, the next
/// update checks the values again. Reads through a const state (`std::as_const(state)`)
/// cost nothing. Only a write through a separate `Tree<T>&` bound to the state (`Tree<T>&
/// t = state;`) goes unseen; call tree() after such a write to have it checked.
template <class T>
class OptState : public Tree<T> {
 public:
  /// An empty state; only useful as a destination for assignment.
  OptState() = default;
  /// Wraps a state tree, e.g. one read back from a checkpoint. Its values are checked by
  /// the next Optimizer::update.
  explicit OptState(Tree<T> tree) : Tree<T>(std::move(tree)) {}

  /// The state tree, for writing (e.g. `state.tree() = loaded` or load_into): the next
  /// Optimizer::update checks its values again, once. To only read or save it, use the
  /// const overload (`std::as_const(state).tree()`), which costs nothing.
  Tree<T>& tree() noexcept {
    values_checked_ = false;
    return *this;
  }
  /// The state tree (what a checkpoint saves).
  const Tree<T>& tree() const noexcept { return *this; }

  // The members of Tree<T> that give write access, each marking the values unchecked.
  /// As Tree<T>::value(); the next update checks the values again.
  arma::Mat<T>& value() { return tree().value(); }
  /// As Tree<T>::value().
  const arma::Mat<T>& value() const { return Tree<T>::value(); }
  /// As Tree<T>::child(i); the next update checks the values again.
  Tree<T>& child(std::size_t i) { return tree().child(i); }
  /// As Tree<T>::child(i).
  const Tree<T>& child(std::size_t i) const { return Tree<T>::child(i); }
  /// As Tree<T>::add; the next update checks the values again.
  Tree<T>& add(std::string name, Tree<T> child) {
    return tree().add(std::move(name), std::move(child));
  }
  /// As Tree<T>::find(name); the next update checks the values again.
  Tree<T>* find(std::string_view name) noexcept { return tree().find(name); }
  /// As Tree<T>::find(name).
  const Tree<T>* find(std::string_view name) const noexcept { return Tree<T>::find(name); }
  /// As Tree<T>::at(path); the next update checks the values again.
  Tree<T>& at(std::string_view path) { return tree().at(path); }
  /// As Tree<T>::at(path).
  const Tree<T>& at(std::string_view path) const { return Tree<T>::at(path); }
  /// As Tree<T>::for_each with writable tensors; the next update checks the values again.
  void for_each(const std::function<void(const std::string&, arma::Mat<T>&)>& f,
                const std::string& prefix = {}) {
    tree().for_each(f, prefix);
  }
  /// As Tree<T>::for_each.
  void for_each(const std::function<void(const std::string&, const arma::Mat<T>&)>& f,
                const std::string& prefix = {}) const {
    Tree<T>::for_each(f, prefix);
  }

 private:
  friend class Optimizer;
  // The tree for the optimizer, which keeps values_checked_ up to date itself.
  Tree<T>& raw() noexcept { return *this; }
  bool values_checked_ = false;  // the values are known good: made by init or checked since
  Tree<T> updates_;  // workspace mirroring the grads: the update being built (empty if frozen)
  std::vector<T*> slice_pointers_;        // workspace of the slice-wise update (see Transform)
  std::vector<std::size_t> slice_sizes_;  // its leaves' sizes
  std::vector<double> slice_norms_;       // its threads' sums of squares
};

/// Optimizer state for single-precision params.
using OptStateF = OptState<float>;
/// Optimizer state for double-precision params.
using OptStateD = OptState<double>;

/// A slice of one params leaf as an element-wise transform sees it (see
/// Transform::update_slice): n consecutive elements of the update being built, of the
/// transform's state entries and of the params, all at the same position.
template <class T>
struct Slice {
  /// The update being built, read and rewritten in place.
  T* update = nullptr;
  /// The transform's state entries at this slice, in entry order (slice_entries of them).
  T* const* state = nullptr;
  /// The params at this slice (before this step's change).
  const T* param = nullptr;
  /// Number of elements.
  std::size_t n = 0;
};

/// One gradient transform. Implementations derive from TransformImpl, which forwards the
/// float and double overloads to member templates. Transforms hold hyper-parameters only.
///
/// An element-wise transform (one whose new update and state at an element depend only on
/// that element) may also implement update_slice and return its number of state entries
/// from slice_entries. When every transform of a chain does, Optimizer::update builds and
/// applies the update a few thousand elements at a time while they are in the L1 cache,
/// instead of passing whole trees from transform to transform: one pass over memory
/// instead of one per transform. The results are the same.
class Transform {
 public:
  virtual ~Transform() = default;

  /// −1 (the default): update_slice is not implemented, the transform needs whole trees
  /// (clip_by_global_norm). Otherwise the number k of entries of the transform's state,
  /// each a tree mirroring the params (0 for a stateless transform), that update_slice
  /// reads and writes.
  virtual int slice_entries() const noexcept { return -1; }
  /// update() restricted to one slice of one non-frozen leaf; `step` as in update(). Only
  /// called when slice_entries() ≥ 0. Must not throw.
  virtual void update_slice(const Slice<float>& /*slice*/, std::int64_t /*step*/) const {}
  /// See the float overload.
  virtual void update_slice(const Slice<double>& /*slice*/, std::int64_t /*step*/) const {}

  /// Short lowercase kind ("scale_by_adam"); the name of its entry in the optimizer state.
  virtual std::string kind() const = 0;
  /// The kind with its hyper-parameters, e.g. "scale_by_adam(beta1=0.9, beta2=0.999, ...)".
  virtual std::string describe() const { return kind(); }

  /// Fresh state for `params` (an empty branch for stateless transforms).
  virtual Tree<float> init(const Tree<float>& params) const = 0;
  /// Fresh state for `params` (an empty branch for stateless transforms).
  virtual Tree<double> init(const Tree<double>& params) const = 0;
  /// Throws when `state` is not a state init(params) makes, or when the step's values are
  /// invalid (a schedule returning NaN). Runs before anything changes; allocates nothing
  /// unless it throws.
  virtual void check(const Tree<float>& state, const Tree<float>& params,
                     std::int64_t step) const = 0;
  /// See the float overload.
  virtual void check(const Tree<double>& state, const Tree<double>& params,
                     std::int64_t step) const = 0;
  /// Throws when a value of `state` is one that init and update never produce: NaN or Inf
  /// (NumericError), a negative second moment (ConfigError), ...; the error's path is the
  /// entry's path in `state` ("nu/dense1/weight"). Called by Optimizer::update, after check
  /// has passed, only for a state whose values are not known good (see OptState): once
  /// after a state is restored, not at every step. The default requires every value to be
  /// finite. Allocates nothing unless it throws.
  virtual void check_values(const Tree<float>& state) const;
  /// See the float overload.
  virtual void check_values(const Tree<double>& state) const;
  /// Rewrites `updates` in place and advances `state`. Leaves of `updates` that are empty
  /// (frozen params) must be skipped, and their state left untouched. Must not throw.
  virtual void update(Tree<float>& updates, Tree<float>& state, const Tree<float>& params,
                      std::int64_t step) const = 0;
  /// See the float overload.
  virtual void update(Tree<double>& updates, Tree<double>& state, const Tree<double>& params,
                      std::int64_t step) const = 0;
  /// Receives a monitored metric once per epoch (reduce_on_plateau); no-op by default.
  virtual void report(Tree<float>& /*state*/, double /*value*/) const {}
  /// See the float overload.
  virtual void report(Tree<double>& /*state*/, double /*value*/) const {}
};

namespace detail {
/// Throws ConfigError naming `transform` unless `state` is an empty branch (the state of a
/// stateless transform). Allocates nothing unless it throws.
template <class T>
void expect_empty_state(const Tree<T>& state, const Transform& transform);
/// For Transform::check_values: throws at the first element of `values` (depth first) that
/// is NaN or ±Inf (NumericError) or, when `non_negative` says what the values are ("a
/// second moment"), below 0 (ConfigError; −0 is fine). The error's path is `path` joined
/// with the element's path in `values`, and the message gives the element and its value.
/// Allocates nothing unless it throws.
template <class T>
void expect_state_values(const Tree<T>& values, std::string_view path = {},
                         const char* non_negative = nullptr);
/// Transform::update of an element-wise transform: its update_slice on every non-frozen
/// leaf, the whole leaf as one slice, with the leaves of its slice_entries() state entries
/// (state.child(0), ...). Does nothing for a transform whose slice_entries() is −1.
template <class T>
void update_leaf_by_leaf(const Transform& transform, Tree<T>& updates, Tree<T>& state,
                         const Tree<T>& params, std::int64_t step);
}  // namespace detail

/// Base for transforms written once for any element type. Derived defines the member
/// templates update_t(updates, state, params, step) or, for an element-wise transform,
/// update_slice_t(slice, step) with slice_entries() (update_t then defaults to it, leaf by
/// leaf); and, when it has state, init_t(params) and check_t(state, params, step).
/// report_t(state, value) and check_values_t(state) are optional.
template <class Derived>
class TransformImpl : public Transform {
 public:
  /// Forwards to Derived::init_t.
  Tree<float> init(const Tree<float>& p) const override { return self().init_t(p); }
  /// Forwards to Derived::init_t.
  Tree<double> init(const Tree<double>& p) const override { return self().init_t(p); }
  /// Forwards to Derived::check_t.
  void check(const Tree<float>& s, const Tree<float>& p, std::int64_t t) const override {
    self().check_t(s, p, t);
  }
  /// Forwards to Derived::check_t.
  void check(const Tree<double>& s, const Tree<double>& p, std::int64_t t) const override {
    self().check_t(s, p, t);
  }
  /// Forwards to Derived::check_values_t.
  void check_values(const Tree<float>& s) const override { self().check_values_t(s); }
  /// Forwards to Derived::check_values_t.
  void check_values(const Tree<double>& s) const override { self().check_values_t(s); }
  /// Forwards to Derived::update_t.
  void update(Tree<float>& u, Tree<float>& s, const Tree<float>& p,
              std::int64_t t) const override {
    self().update_t(u, s, p, t);
  }
  /// Forwards to Derived::update_t.
  void update(Tree<double>& u, Tree<double>& s, const Tree<double>& p,
              std::int64_t t) const override {
    self().update_t(u, s, p, t);
  }
  /// Forwards to Derived::report_t.
  void report(Tree<float>& s, double v) const override { self().report_t(s, v); }
  /// Forwards to Derived::report_t.
  void report(Tree<double>& s, double v) const override { self().report_t(s, v); }
  /// Forwards to Derived::update_slice_t.
  void update_slice(const Slice<float>& s, std::int64_t t) const override {
    self().update_slice_t(s, t);
  }
  /// Forwards to Derived::update_slice_t.
  void update_slice(const Slice<double>& s, std::int64_t t) const override {
    self().update_slice_t(s, t);
  }

  /// Default: no state.
  template <class T>
  Tree<T> init_t(const Tree<T>& /*params*/) const {
    return Tree<T>();
  }
  /// Default: the state must be empty.
  template <class T>
  void check_t(const Tree<T>& state, const Tree<T>& /*params*/, std::int64_t /*step*/) const {
    detail::expect_empty_state(state, *this);
  }
  /// Default: every value of the state is finite.
  template <class T>
  void check_values_t(const Tree<T>& state) const {
    detail::expect_state_values(state);
  }
  /// Default: metrics are ignored.
  template <class T>
  void report_t(Tree<T>& /*state*/, double /*value*/) const {}
  /// Default: not element-wise (slice_entries() is −1, so this is never called).
  template <class T>
  void update_slice_t(const Slice<T>& /*slice*/, std::int64_t /*step*/) const {}
  /// Default for an element-wise transform: update_slice_t on every leaf.
  template <class T>
  void update_t(Tree<T>& updates, Tree<T>& state, const Tree<T>& params, std::int64_t step) const {
    detail::update_leaf_by_leaf(*this, updates, state, params, step);
  }

 private:
  const Derived& self() const { return static_cast<const Derived&>(*this); }
};

namespace detail {
struct OptimizerAccess;  // the library's training step (src/optim/optimizer_access.hpp)
}

/// A chain of gradient transforms; every transform and every ready-made optimizer (adam,
/// sgd, ...) is an Optimizer, and chain() concatenates them. Immutable and cheap to copy
/// (copies share the transforms); init, update and report are const and thread-safe.
///
///   Optimizer opt = adam({.learning_rate = 1e-3});
///   OptState<float> opt_state = opt.init(params);
///   opt.update(params, grads, opt_state);   // params += chain(grads), in place
class Optimizer {
 public:
  /// A chain of one transform; throws ConfigError on a null pointer.
  explicit Optimizer(std::shared_ptr<const Transform> transform);
  /// A chain of the given transforms, applied in order (may be empty: the identity).
  explicit Optimizer(std::vector<std::shared_ptr<const Transform>> transforms);

  /// Fresh state for `params`: count 0 and each transform's state. Its values are known
  /// good, so update does not check them (see OptState).
  template <class T>
  OptState<T> init(const Tree<T>& params) const;

  /// One step, in place: params += chain(grads). First checks everything and throws
  /// without changing anything when
  ///   - grads do not mirror params (names: ConfigError, shapes: ShapeError, naming the
  ///     path); an EMPTY grads leaf marks a frozen param, which is skipped entirely;
  ///   - a gradient holds a NaN or Inf (NumericError naming the first such path);
  ///   - `state` was not made by this optimizer's init for params like these (ConfigError),
  ///     or its count is not a whole number in [0, 2⁶³) (ConfigError, path "count");
  ///   - `state` was restored (see OptState) and holds a value init and update never
  ///     produce: NaN or Inf (NumericError), a negative second moment or sum of squares
  ///     (ConfigError), ...; the path names the entry, e.g. "scale_by_adam/nu/dense1/weight".
  ///     Checked once, by the first update after restoring (Transform::check_values).
  /// Then applies the update; a steady-state call allocates nothing.
  /// Returns the global L2 norm of the applied update (params after − params before).
  template <class T>
  double update(Tree<T>& params, const Tree<T>& grads, OptState<T>& state) const;
  /// The same update, split between the executor's threads when every transform is
  /// element-wise (see Transform::slice_entries): each thread updates its share of every
  /// leaf. Otherwise the same as the update above, on the calling thread. The threads also
  /// scan their shares of the grads for NaN and Inf before anything changes. The result
  /// does not depend on the number of threads, except for the returned norm's last bits.
  template <class T>
  double update(Tree<T>& params, const Tree<T>& grads, OptState<T>& state,
                Executor& executor) const;

  /// Reports a monitored metric (e.g. the validation loss once per epoch) to every
  /// transform that uses one (reduce_on_plateau); others ignore it. Checks the state
  /// structure first (ConfigError).
  template <class T>
  void report(OptState<T>& state, double value) const;

  /// The number of updates `state` has applied (its "count" entry). Throws ConfigError
  /// (path "count") when there is no such entry or it is not a whole number in [0, 2⁶³).
  template <class T>
  static std::int64_t step_count(const OptState<T>& state);

  /// The transforms in order.
  const std::vector<std::shared_ptr<const Transform>>& transforms() const noexcept {
    return transforms_;
  }
  /// The state entry name of each transform: its kind, numbered from the second one of the
  /// same kind on ("scale", "scale2").
  const std::vector<std::string>& entry_names() const noexcept { return names_; }
  /// "chain(scale_by_adam(beta1=0.9, ...), scale_by_learning_rate(constant(0.001)))".
  std::string describe() const;

 private:
  // A data-parallel training step that has already scanned the summed gradients for NaN
  // and Inf (while summing them) updates without scanning them again.
  friend struct detail::OptimizerAccess;

  // Every transform's check and, when `values`, its check_values.
  template <class T>
  void check_transforms(const Tree<T>& state, const Tree<T>& params, std::int64_t step,
                        bool values) const;
  // Checks the entries and the count; returns the count.
  template <class T>
  std::int64_t check_state_layout(const Tree<T>& state) const;

  // `grads_known_finite`: skip the NaN / Inf scan of the grads (the caller has done it).
  template <class T>
  std::int64_t check_update(const Tree<T>& params, const Tree<T>& grads,
                            const OptState<T>& state, Executor* executor,
                            bool grads_known_finite) const;
  template <class T>
  double update_on(Tree<T>& params, const Tree<T>& grads, OptState<T>& state,
                   Executor* executor, bool grads_known_finite) const;
  template <class T>
  double update_by_trees(Tree<T>& params, const Tree<T>& grads, OptState<T>& state,
                         std::int64_t step) const;
  template <class T>
  double update_by_slices(Tree<T>& params, const Tree<T>& grads, OptState<T>& state,
                          std::int64_t step, Executor* executor) const;

  std::vector<std::shared_ptr<const Transform>> transforms_;
  std::vector<std::string> names_;
  int slice_entries_ = -1;  // Σ of the transforms' slice entries; −1 if one is not element-wise
};

/// The transforms of `parts`, in order, as one optimizer (nested chains are flattened).
Optimizer chain(std::vector<Optimizer> parts);

/// chain(a, b, c): the transforms of a, then b, then c.
template <class... Parts>
Optimizer chain(const Optimizer& first, const Parts&... rest) {
  return chain(std::vector<Optimizer>{first, Optimizer(rest)...});
}

}  // namespace layercache
