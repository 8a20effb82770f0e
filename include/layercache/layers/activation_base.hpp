// Base of the parameter-free activation layers (ReLU ... Tanh, Softmax, LogSoftmax): one
// implementation of the layer contract, each layer adding only its math in src/.
//
// Every activation accepts any input shape and returns an output of the same shape, owns no
// params, and keeps exactly one tensor in its cache (its input x or its output y, whichever
// its backward formula needs). The shared code (src/layers/activation_base.hpp) checks shapes,
// reuses the output and dx buffers, stores the cache and honours Needs::input; a layer's .cpp
// supplies forward(x) -> y and backward(kept, dy) -> dx. See docs/layers.md.
#pragma once

#include "layercache/layer.hpp"

namespace layercache {

/// Base of the parameter-free activations. Any input shape is accepted and the output has
/// the same shape; the cache keeps one tensor (input or output, shared, never copied);
/// backward validates the cache kind (CacheError) and dy's shape (ShapeError) and computes
/// no dx when Needs::input is false. Derived classes name their kind(); their math lives in
/// src/ (see docs/layers.md for each formula). For the library's own activations: a user's
/// layer derives from LayerImpl directly (docs/custom_layer.md).
template <class Derived>
class ActivationLayer : public LayerImpl<Derived> {
 public:
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

 private:
  const Derived& derived() const { return static_cast<const Derived&>(*this); }
};

}  // namespace layercache
