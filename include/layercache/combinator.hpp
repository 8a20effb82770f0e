// Combinators: layers made of named child layers (docs/combinators.md).
//
// Network, Residual, Parallel and Graph are written on this header, and so can a user's
// combinator. A combinator derives from CombinatorImpl, declares its children with parts()
// (each with its name and the input shape it receives), and routes data between them in
// forward_t, backward_t and infer_t with the child functions below. The framework does what
// every combinator needs:
//   - before any data flows, the combinator's whole subtree of params (and state) is checked
//     against what every layer in it declares: missing, undeclared and misshapen entries are
//     errors naming the full path;
//   - the cache is stamped and resolved as for any layer, dy is checked against the output;
//   - with Context::check_finite, each layer checks its own input and output, so a NaN is
//     reported at the innermost layer that made it;
// and the child functions do the rest per child: its error paths carry its name
// (forward_child, backward_child, infer_child), its gradients are written straight into its
// node of the combinator's grads (lent, not copied), and its new state is gathered into the
// combinator's without copying (gather_state).
#pragma once

#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "layercache/layer_impl.hpp"

namespace layercache {

/// One named child of a combinator.
struct Child {
  /// The child's name: its path segment and its entry in the combinator's params.
  std::string name;
  /// The child layer (shared, immutable).
  std::shared_ptr<const Layer> layer;
};

/// What a combinator keeps for backward when it runs each child once (Network, Residual,
/// Parallel): every child's forward result, its output shared with whoever reads it.
template <class T>
struct ChildrenCache : Cache {
  /// One per child, in order; steps[i].output is (n_i × batch), child i's output.
  std::vector<ForwardResult<T>> steps;
  /// The children's names, in order (for for_each_child).
  std::vector<std::string> names;

  /// Sizes `steps` and records the names for `children` (allocates only when they change).
  void prepare(const std::vector<Child>& children);
  /// Every child's buffers.
  void for_each_buffer(const BufferVisitor& f) const override;
  /// Every child's cache, by child name.
  void for_each_child(const std::function<void(const std::string&, const Cache&)>& f) const override;
};

extern template struct ChildrenCache<float>;
extern template struct ChildrenCache<double>;

/// Names a combinator's children: explicit names (named("encoder", ...)) are kept, the others
/// get their kind and a per-kind counter (dense1, relu1, dense2). Names in `reserved` are
/// taken already (a combinator's own tensors). A name with '/', an empty list, or a name
/// used twice is a ConfigError.
std::vector<Child> name_children(const std::vector<AnyLayer>& layers,
                                 const std::vector<std::string>& reserved = {});

/// The node of `tree` for the child `name`: its entry, or an empty tree when `tree` is empty
/// (no state given). The framework has checked the entry exists before a combinator's
/// forward_t, backward_t or infer_t runs.
template <class T>
const Tree<T>& child_node(const Tree<T>& tree, std::string_view name);

/// Runs the child's forward on `x` (samples of shape `shape`) into `out`, with `params` and
/// `state` its nodes (child_node(combinator's params, child.name), or another node's for a
/// child that shares params); its errors carry its name.
template <class T>
void forward_child(const Child& child, const Tree<T>& params, const Tree<T>& state,
                   const ConstBuffer<T>& x, const Shape& shape, const Context& ctx,
                   ForwardResult<T>& out);

/// Runs the child's infer with its nodes of params and state; its errors carry its name.
template <class T>
void infer_child(const Child& child, const Tree<T>& params, const Tree<T>& state,
                 const arma::Mat<T>& x, const Shape& shape, arma::Mat<T>& y);

/// Runs the child's backward with its node of params and `needs` (the child's: see
/// Needs::child) into `work`, its dx left in work.dx, and its parameter gradients written
/// into `grads`: the child's node of the combinator's grads, lent to the child for the call
/// (swapped in and back, never copied; `grads` may be work.grads itself). Its errors carry
/// its name.
template <class T>
void backward_child(const Child& child, const Tree<T>& params, const Cache& cache,
                    const arma::Mat<T>& dy, const Needs& needs, Tree<T>& grads,
                    BackwardResult<T>& work);

/// Tells needs.listener, if any, that `grads` (a child's node of the combinator's grads)
/// is final: a combinator calls it once it will not write that node again in this backward
/// call, so the gradients can travel while the children before it run (Network calls it
/// after each child's backward).
template <class T>
void notify_grads_final(const Needs& needs, Tree<T>& grads) {
  if (needs.listener) needs.listener->grads_final(grads);
}
/// Gathers the new state of the children (results[i].state for children[i]) into `state`,
/// a node with one entry per child, by swapping buffers (no copy). Leaves `state` empty when
/// no child returned state (stateless children, or infer mode).
template <class T>
void gather_state(const std::vector<Child>& children, std::vector<ForwardResult<T>>& results,
                  Tree<T>& state);

/// True when backward has a parameter gradient to compute in `params` (a child's node):
/// it holds a tensor that `frozen` (the child's frozen set, null for none) does not cover.
template <class T>
bool wants_grads(const Tree<T>& params, const FrozenSet* frozen) noexcept;

/// Base of a combinator: a LayerImpl whose Derived provides `kind_name`, `output_shape`,
/// `parts`, optionally `param_specs` for tensors of its own, and the member templates
///   forward_t(params, state, x, call, cache, out)     out.output: alias a child's output or
///                                                     out.write_output(...); out.state:
///                                                     gather_state
///   backward_t(params, cache, dy, needs, out)          out.dx (emptied by the framework when
///                                                     !needs.input), out.grads (prepared,
///                                                     mirroring params)
///   infer_t(params, state, x, call, y)
/// with `params` and `state` the combinator's own nodes. CacheOf<T> is its cache type. The
/// framework checks the whole subtree before any data flows (see the top of this header).
template <class Derived, template <class> class CacheOf>
class CombinatorImpl : public LayerImpl<Derived, CacheOf> {
 public:
  /// Marks the layer as a combinator for LayerImpl.
  static constexpr bool combinator = true;
};

}  // namespace layercache
