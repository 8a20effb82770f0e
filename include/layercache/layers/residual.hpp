// Residual: y = x + f(x), with an optional projection on the skip path, y = p(x) + f(x).
#pragma once

#include <string>
#include <vector>

#include "layercache/combinator.hpp"

namespace layercache {

/// A residual block around `inner` (any layer, typically a Network):
///   forward:  y = s + f(x),  s = x, or s = p(x) with a projection p when shapes differ
///   backward: dx = df/dx·dy + (dy, or dp/dx·dy)
/// Its children are named "inner" and "projection" unless given names (named(...)); its
/// params are {inner: ..., projection: ...}. The add writes straight into the block's output
/// buffer, and backward adds the skip gradient into the inner child's dx in place.
class Residual : public CombinatorImpl<Residual, ChildrenCache> {
 public:
  /// The layer's kind.
  static constexpr const char* kind_name = "residual";
  /// y = x + inner(x); inner's output shape must equal its input shape.
  explicit Residual(AnyLayer inner);
  /// y = projection(x) + inner(x); the two outputs must have the same shape.
  Residual(AnyLayer inner, AnyLayer projection);

  /// inner's output shape, checked against the skip path's.
  Shape output_shape(const Shape& input) const override;
  /// "inner" (and "projection"), each receiving the block's input.
  std::vector<Part> parts(const Shape& input) const override;

  /// y = skip + inner(x) (see CombinatorImpl).
  template <class T>
  void forward_t(const Tree<T>& params, const Tree<T>& state, const ConstBuffer<T>& x,
                 const LayerCall<T>& call, ChildrenCache<T>& cache, ForwardResult<T>& out) const;
  /// dx = inner's dx + the skip path's (see CombinatorImpl).
  template <class T>
  void backward_t(const Tree<T>& params, const ChildrenCache<T>& cache, const arma::Mat<T>& dy,
                  const Needs& needs, BackwardResult<T>& out) const;
  /// y = skip + inner(x) (see CombinatorImpl).
  template <class T>
  void infer_t(const Tree<T>& params, const Tree<T>& state, const arma::Mat<T>& x,
               const LayerCall<T>& call, arma::Mat<T>& y) const;

 private:
  std::vector<Child> children_;  // inner, then projection if any
};

extern template class LayerImpl<Residual, ChildrenCache>;

}  // namespace layercache
