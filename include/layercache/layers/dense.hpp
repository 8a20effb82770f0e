// Dense (fully connected) layer: y = W x + b, with W (n_out × n_in) and x (n_in × batch).
#pragma once

#include <cstddef>

#include "layercache/layer.hpp"

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

  const char* kind() const noexcept override { return "dense"; }
  void for_each_buffer(const std::function<void(const void*, std::size_t)>& f) const override {
    visit_buffer(x, f);
  }
};

/// Fully connected layer. Params: weight (n_out × n_in) and, unless disabled, bias (n_out × 1).
///   forward:  y = W x + b
///   backward: dW = dy xᵀ,  db = Σ_columns dy,  dx = Wᵀ dy
class Dense : public LayerImpl<Dense> {
 public:
  /// A layer mapping n_in features to n_out features.
  Dense(std::size_t n_in, std::size_t n_out, DenseOptions options = {});

  std::string kind() const override { return "dense"; }
  Shape output_shape(const Shape& input) const override;
  std::vector<TensorSpec> param_specs(const Shape& input) const override;
  /// Two entries, weight and bias; one without a bias. Any input shape.
  std::size_t param_entries(const Shape& /*input*/) const override { return options_.bias ? 2 : 1; }

  /// Input features.
  std::size_t n_in() const noexcept { return n_in_; }
  /// Output features.
  std::size_t n_out() const noexcept { return n_out_; }
  /// Whether the layer has a bias.
  bool has_bias() const noexcept { return options_.bias; }

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
  std::size_t n_in_;
  std::size_t n_out_;
  DenseOptions options_;
};

}  // namespace layercache
