// Conv2D: 2-D convolution of image samples (channels, height, width) by im2col and GEMM.
#pragma once

#include <cstddef>

#include "layercache/layer_impl.hpp"

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
  ConstBuffer<T> x;         ///< input (c·h·w × batch); its shape (c, h, w) is input_shape()
  arma::Mat<T> workspace;   ///< forward scratch, one block's im2col (P·nb × c·k·k) then GEMM result (P·nb × o)

  /// The input's buffer and the scratch.
  void for_each_buffer(const BufferVisitor& f) const override {
    visit_buffer(x, f);
    visit_buffer(workspace, f);
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
class Conv2D : public LayerImpl<Conv2D, Conv2DCache> {
 public:
  /// The layer's kind.
  static constexpr const char* kind_name = "conv2d";
  /// A convolution with the given options; throws ConfigError on zero sizes.
  explicit Conv2D(Conv2DOptions options);

  Shape output_shape(const Shape& input) const override;
  std::vector<TensorSpec> param_specs(const Shape& input) const override;

  /// The options the layer was built with.
  const Conv2DOptions& options() const noexcept { return options_; }

  /// Y = col(x) · Wᵀ + b (see LayerImpl).
  template <class T>
  void forward_t(const Tensors<T>& params, const ConstBuffer<T>& x, arma::Mat<T>& y,
                 Conv2DCache<T>& cache, const LayerCall<T>& call) const;
  /// dW, db and dx = col2im(dY · W) (see LayerImpl).
  template <class T>
  void backward_t(const Tensors<T>& params, const Conv2DCache<T>& cache, const arma::Mat<T>& dy,
                  Gradients<T>& grads) const;
  /// Y = col(x) · Wᵀ + b (see LayerImpl).
  template <class T>
  void infer_t(const Tensors<T>& params, const arma::Mat<T>& x, arma::Mat<T>& y,
               const LayerCall<T>& call) const;

 private:
  Conv2DOptions options_;
};

extern template class LayerImpl<Conv2D, Conv2DCache>;

}  // namespace layercache
