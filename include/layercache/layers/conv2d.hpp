// Conv2D: 2-D convolution of image samples (channels, height, width) by im2col and GEMM.
#pragma once

#include <cstddef>

#include "layercache/layer.hpp"

namespace layercache {

/// Options of Conv2D. in_channels and out_channels have no sensible default and must be set:
/// Conv2D({.in_channels = 1, .out_channels = 32, .kernel = 3}).
struct Conv2DOptions {
  /// Channels of the input image (c of the input shape (c, h, w)).
  std::size_t in_channels = 0;
  /// Channels of the output image (number of filters).
  std::size_t out_channels = 0;
  /// Side of the square kernel.
  std::size_t kernel = 3;
  /// Step between neighbouring windows, the same along height and width.
  std::size_t stride = 1;
  /// Zeros added on every side of each input channel.
  std::size_t padding = 0;
  /// Add a learned bias b (out_channels × 1), one value per output channel.
  bool bias = true;
};

/// What Conv2D keeps for backward: its input, shared with the previous layer's output (no
/// extra memory), and the input's shape. The im2col matrix backward needs for dW is rebuilt
/// from x block by block, so a conv layer costs no activation memory of its own; `workspace`
/// is forward's scratch block (kept so a steady-state forward allocates nothing; backward never
/// reads it).
template <class T>
struct Conv2DCache : Cache {
  ConstBuffer<T> x;         ///< input (c·h·w × batch)
  Shape input;              ///< (c, h, w)
  arma::Mat<T> workspace;   ///< forward scratch, one block's im2col (P·nb × c·k·k) then GEMM result (P·nb × o)

  const char* kind() const noexcept override { return "conv2d"; }
  void for_each_buffer(const std::function<void(const void*, std::size_t)>& f) const override {
    if (x) f(x->memptr(), x->n_elem * sizeof(T));
    if (workspace.n_elem) f(workspace.memptr(), workspace.n_elem * sizeof(T));
  }
};

/// 2-D convolution (cross-correlation, as in PyTorch) with a square kernel k, stride s and
/// zero padding p, of inputs of shape (c, h, w) into outputs of shape (o, h_out, w_out) with
///   h_out = ⌊(h + 2p − k) / s⌋ + 1,   w_out = ⌊(w + 2p − k) / s⌋ + 1.
/// Params: weight (o × c·k·k) and, unless disabled, bias (o × 1). Column j = (ci·k + kw)·k + kh
/// of the weight holds kernel position (kh, kw) of input channel ci, i.e. each row is the
/// kernel stored like an arma::Cube(k, k, c) (PyTorch's (o, c, kh, kw) weight, with every k×k
/// kernel transposed).
///   forward:  y[oc, i, j] = b[oc] + Σ_{ci, kh, kw} W[oc, ci, kh, kw] · x[ci, i·s + kh − p, j·s + kw − p]
///             computed as Y = col(x) · Wᵀ with col(x) the im2col matrix ((h_out·w_out) × c·k·k)
///             per sample, whose row for output pixel (i, j) is its receptive field.
///   backward: dW = Σ_samples dYᵀ · col(x),   db = Σ_samples, pixels dY,
///             dx = col2im(dY · W)  (col2im adds each patch entry back to the pixel it came from).
/// The input shape passed by the network must be the rank-3 image shape (c, h, w), e.g.
/// Shape{1, 28, 28}; a flat shape such as (784) is a ShapeError.
class Conv2D : public LayerImpl<Conv2D> {
 public:
  /// A convolution with the given options; throws ConfigError on zero sizes.
  explicit Conv2D(Conv2DOptions options);

  std::string kind() const override { return "conv2d"; }
  Shape output_shape(const Shape& input) const override;
  std::vector<TensorSpec> param_specs(const Shape& input) const override;
  /// Two entries, weight and bias; one without a bias. Any input shape.
  std::size_t param_entries(const Shape& /*input*/) const override { return options_.bias ? 2 : 1; }

  /// The options the layer was built with.
  const Conv2DOptions& options() const noexcept { return options_; }

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
  Conv2DOptions options_;
};

}  // namespace layercache
