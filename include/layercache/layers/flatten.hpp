// Flatten: an image sample (c, h, w) seen as a vector (c·h·w); no value moves.
#pragma once

#include <cstddef>

#include "layercache/layer.hpp"

namespace layercache {

/// What Flatten keeps for backward: no buffer, only the sizes to check dy against.
template <class T>
struct FlattenCache : Cache {
  std::size_t rows = 0;   ///< values per sample, c·h·w
  std::size_t batch = 0;  ///< samples

  const char* kind() const noexcept override { return "flatten"; }
  void for_each_buffer(const std::function<void(const void*, std::size_t)>&) const override {}
};

/// Flattens a sample of any shape into a vector: (c, h, w) → (c·h·w). A sample is already one
/// column, so the values stay where they are: the output is the input buffer itself (no copy),
/// like an identity.
///   forward:  y = x            (same memory; only the shape changes)
///   backward: dx = dy
class Flatten : public LayerImpl<Flatten> {
 public:
  std::string kind() const override { return "flatten"; }
  Shape output_shape(const Shape& input) const override;

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
