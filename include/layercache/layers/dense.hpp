// Dense (fully connected) layer: y = W x + b, with W (n_out × n_in) and x (n_in × batch).
#pragma once

#include <cstddef>

#include "layercache/layer_impl.hpp"

namespace layercache {

/// Options of Dense.
struct DenseOptions {
  /// Add a learned bias b (n_out × 1).
  bool bias = true;
};

/// What Dense keeps for backward: its input, shared with the previous layer's output.
template <class T>
struct DenseCache : Cache {
  ConstBuffer<T> x;  ///< input (n_in × batch), shared with the previous layer's output

  /// The input's buffer.
  void for_each_buffer(const BufferVisitor& f) const override { visit_buffer(x, f); }
};

/// Fully connected layer. Params: weight (n_out × n_in) and, unless disabled, bias (n_out × 1).
///   forward:  y = W x + b
///   backward: dW = dy xᵀ,  db = Σ_columns dy,  dx = Wᵀ dy
class Dense : public LayerImpl<Dense, DenseCache> {
 public:
  /// The layer's kind.
  static constexpr const char* kind_name = "dense";
  /// A layer mapping n_in features to n_out features.
  Dense(std::size_t n_in, std::size_t n_out, DenseOptions options = {});

  Shape output_shape(const Shape& input) const override;
  std::vector<TensorSpec> param_specs(const Shape& input) const override;

  /// Input features.
  std::size_t n_in() const noexcept { return n_in_; }
  /// Output features.
  std::size_t n_out() const noexcept { return n_out_; }
  /// Whether the layer has a bias.
  bool has_bias() const noexcept { return options_.bias; }

  /// y = W x + b (see LayerImpl).
  template <class T>
  void forward_t(const Tensors<T>& params, const ConstBuffer<T>& x, arma::Mat<T>& y,
                 DenseCache<T>& cache, const LayerCall<T>& call) const;
  /// dW = dy xᵀ, db = Σ dy, dx = Wᵀ dy (see LayerImpl).
  template <class T>
  void backward_t(const Tensors<T>& params, const DenseCache<T>& cache, const arma::Mat<T>& dy,
                  Gradients<T>& grads) const;
  /// y = W x + b (see LayerImpl).
  template <class T>
  void infer_t(const Tensors<T>& params, const arma::Mat<T>& x, arma::Mat<T>& y,
               const LayerCall<T>& call) const;

 private:
  std::size_t n_in_;
  std::size_t n_out_;
  DenseOptions options_;
};

extern template class LayerImpl<Dense, DenseCache>;

}  // namespace layercache
