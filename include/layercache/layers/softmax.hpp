// Softmax and LogSoftmax over each column (each sample), over all of its rows, computed
// with the column maximum subtracted so that no exponential overflows; the same functions as
// softmax_columns and log_softmax_columns (losses.hpp). Formulas: docs/layers.md. For
// classification losses prefer the fused softmax cross-entropy loss, which takes the logits
// directly.
#pragma once

#include "layercache/layers/elementwise.hpp"

namespace layercache {

/// Softmax of each column over all its rows (the per-sample shape is flattened). Keeps its
/// output, the probabilities.
///   forward:  yᵢ = exp(xᵢ − m) / Σⱼ exp(xⱼ − m),  m = maxⱼ xⱼ
///   backward: dxᵢ = yᵢ·(dyᵢ − Σⱼ dyⱼ·yⱼ)
class Softmax : public LayerImpl<Softmax, OneTensorCache> {
 public:
  /// The layer's kind.
  static constexpr const char* kind_name = "softmax";
  /// Any shape; the output has the same shape.
  Shape output_shape(const Shape& input) const override { return input; }

  /// y = softmax of each column; the cache keeps y (see LayerImpl).
  template <class T>
  void forward_t(const Tensors<T>& params, const ConstBuffer<T>& x, arma::Mat<T>& y,
                 OneTensorCache<T>& cache, const LayerCall<T>& call) const;
  /// dx = y ⊙ (dy − ⟨dy, y⟩) per column (see LayerImpl).
  template <class T>
  void backward_t(const Tensors<T>& params, const OneTensorCache<T>& cache,
                  const arma::Mat<T>& dy, Gradients<T>& grads) const;
  /// y = softmax of each column (see LayerImpl).
  template <class T>
  void infer_t(const Tensors<T>& params, const arma::Mat<T>& x, arma::Mat<T>& y,
               const LayerCall<T>& call) const;
};

/// Logarithm of the softmax of each column, computed stably (never log of a rounded 0).
/// Keeps its output, the log-probabilities.
///   forward:  yᵢ = xᵢ − m − log Σⱼ exp(xⱼ − m),  m = maxⱼ xⱼ
///   backward: dxᵢ = dyᵢ − exp(yᵢ)·Σⱼ dyⱼ
class LogSoftmax : public LayerImpl<LogSoftmax, OneTensorCache> {
 public:
  /// The layer's kind.
  static constexpr const char* kind_name = "log_softmax";
  /// Any shape; the output has the same shape.
  Shape output_shape(const Shape& input) const override { return input; }

  /// y = log softmax of each column; the cache keeps y (see LayerImpl).
  template <class T>
  void forward_t(const Tensors<T>& params, const ConstBuffer<T>& x, arma::Mat<T>& y,
                 OneTensorCache<T>& cache, const LayerCall<T>& call) const;
  /// dx = dy − exp(y)·Σ dy per column (see LayerImpl).
  template <class T>
  void backward_t(const Tensors<T>& params, const OneTensorCache<T>& cache,
                  const arma::Mat<T>& dy, Gradients<T>& grads) const;
  /// y = log softmax of each column (see LayerImpl).
  template <class T>
  void infer_t(const Tensors<T>& params, const arma::Mat<T>& x, arma::Mat<T>& y,
               const LayerCall<T>& call) const;
};

extern template class LayerImpl<Softmax, OneTensorCache>;
extern template class LayerImpl<LogSoftmax, OneTensorCache>;

}  // namespace layercache
