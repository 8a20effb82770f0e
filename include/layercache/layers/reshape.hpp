// Reshape: a sample seen with another shape of the same size, e.g. (784) → (1, 28, 28).
#pragma once

#include <cstddef>

#include "layercache/layer.hpp"

namespace layercache {

/// What Reshape keeps for backward: no buffer, only the sizes to check dy against.
template <class T>
struct ReshapeCache : Cache {
  std::size_t rows = 0;   ///< values per sample
  std::size_t batch = 0;  ///< samples

  const char* kind() const noexcept override { return "reshape"; }
  void for_each_buffer(const std::function<void(const void*, std::size_t)>&) const override {}
};

/// Gives every sample a new shape with the same number of values, e.g. turns flat MNIST rows
/// (784) into images (1, 28, 28) for a conv layer. The values keep their order in the column
/// (for images: channels one after another, each column-major), so the output is the input
/// buffer itself (no copy).
///   forward:  y = x            (same memory; only the shape changes)
///   backward: dx = dy
class Reshape : public LayerImpl<Reshape> {
 public:
  /// A reshape into `target`; throws ConfigError when the target has no values.
  explicit Reshape(Shape target);

  std::string kind() const override { return "reshape"; }
  Shape output_shape(const Shape& input) const override;

  /// The shape every sample takes.
  const Shape& target() const noexcept { return target_; }

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

 private:
  Shape target_;
};

}  // namespace layercache
