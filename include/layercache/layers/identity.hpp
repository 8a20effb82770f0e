// Identity: passes its input through unchanged, without copying it.
#pragma once

#include <cstddef>
#include <functional>

#include "layercache/layer.hpp"

namespace layercache {

/// What Identity keeps for backward: no tensor, only the batch's dimensions, so that a dy
/// of the wrong shape is still rejected. Cache::bytes() is 0.
template <class T>
struct IdentityCache : Cache {
  std::size_t rows = 0;  ///< rows of the input (n = the per-sample size)
  std::size_t cols = 0;  ///< columns of the input (batch)

  const char* kind() const noexcept override { return "identity"; }
  void for_each_buffer(const std::function<void(const void*, std::size_t)>&) const override {}
};

/// The identity map. Its output is its input buffer itself (no copy); any shape is accepted.
///   forward:  y = x
///   backward: dx = dy
class Identity : public LayerImpl<Identity> {
 public:
  std::string kind() const override { return "identity"; }
  /// Any shape is accepted; the output has the same shape.
  Shape output_shape(const Shape& input) const override { return input; }

  /// See LayerImpl.
  template <class T>
  void forward_t(const Tree<T>& params, const Tree<T>& state, const ConstBuffer<T>& x,
                 const Shape& x_shape, const Context& ctx, ForwardResult<T>& out) const;
  /// See LayerImpl.
  template <class T>
  void backward_t(const Tree<T>& params, const Cache& cache, const arma::Mat<T>& dy,
                  const Needs& needs, BackwardResult<T>& out) const;
  /// See LayerImpl.
  template <class T>
  void infer_t(const Tree<T>& params, const Tree<T>& state, const arma::Mat<T>& x,
               const Shape& x_shape, arma::Mat<T>& y) const;
};

}  // namespace layercache
