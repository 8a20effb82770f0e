// Conv2D: 2-D convolution of image samples (channels, height, width) by im2col and GEMM.
#pragma once

#include <cstddef>
#include <utility>

#include "layercache/layer_impl.hpp"
#include "layercache/layers/window2d.hpp"

namespace layercache {

/// Options of Conv2D. in_channels and out_channels have no sensible default and must be set:
/// Conv2D({.in_channels = 1, .out_channels = 32, .kernel = 3}). Every size is per axis
/// (height, width); a single number means both: `.kernel = {3, 5}`, `.stride = 2`.
struct Conv2DOptions {
  /// Channels of the input image (c of the input shape (c, h, w)).
  std::size_t in_channels = 0;
  /// Channels of the output image (number of filters).
  std::size_t out_channels = 0;
  /// Taps of the kernel along the height and the width.
  Size2 kernel = 3;
  /// Step between neighbouring windows along the height and the width.
  Size2 stride = 1;
  /// Zeros added above and below, left and right of each input channel; or
  /// Padding2D::same_size() for an output of ⌈input / stride⌉ along each axis.
  Padding2D padding = 0;
  /// Step between neighbouring kernel taps (1: adjacent pixels; 2: every other pixel).
  Size2 dilation = 1;
  /// Channel groups: group g's out_channels / groups filters see only its in_channels /
  /// groups input channels. groups = in_channels = out_channels is a depthwise convolution.
  std::size_t groups = 1;
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
  arma::Mat<T> workspace;   ///< forward scratch, one block's im2col (P·nb × c·kh·kw) then GEMM result (P·nb × o)

  /// The input's buffer and the scratch.
  void for_each_buffer(const BufferVisitor& f) const override {
    visit_buffer(x, f);
    visit_buffer(workspace, f);
  }
};

/// 2-D convolution (cross-correlation, as in PyTorch) of inputs of shape (c, h, w) into outputs
/// of shape (o, h_out, w_out), with a kernel of kh × kw taps dilated by (dh, dw), strides
/// (sh, sw), zero padding (ph, pw) on each side (or "same") and g channel groups:
///   h_out = ⌊(h + 2·ph − dh·(kh − 1) − 1) / sh⌋ + 1   (w_out alike).
/// Params: weight (o × (c/g)·kh·kw) and, unless disabled, bias (o × 1). Column
/// (ci·kw + j)·kh + i of the weight holds tap (i, j) of input channel ci of the filter's group,
/// i.e. each row is the kernel stored like an arma::Cube(kh, kw, c/g) (PyTorch's
/// (o, c/g, kh, kw) weight, with every kernel transposed).
///   forward:  y[oc, r, q] = b[oc] + Σ_{ci in oc's group, i, j} W[oc, ci, i, j] ·
///                                   x[ci, r·sh + i·dh − ph, q·sw + j·dw − pw]
///             computed as Y = col(x) · Wᵀ per group, with col(x) the im2col matrix
///             ((h_out·w_out) × c·kh·kw) per sample, whose row for output pixel (r, q) is its
///             receptive field.
///   backward: dW = Σ_samples dYᵀ · col(x),   db = Σ_samples, pixels dY,
///             dx = col2im(dY · W)  (col2im adds each patch entry back to the pixel it came from),
///             each product taken per group.
/// The input shape passed by the network must be the rank-3 image shape (c, h, w), e.g.
/// Shape{1, 28, 28}; a flat shape such as (784) is a ShapeError.
class Conv2D : public LayerImpl<Conv2D, Conv2DCache> {
 public:
  /// The layer's kind.
  static constexpr const char* kind_name = "conv2d";
  /// A convolution with the given options; throws ConfigError on zero sizes, channels that
  /// the groups do not divide, or sizes whose products overflow.
  explicit Conv2D(Conv2DOptions options);

  Shape output_shape(const Shape& input) const override;
  std::vector<TensorSpec> param_specs(const Shape& input) const override;

  /// The options the layer was built with.
  const Conv2DOptions& options() const noexcept { return options_; }
  /// The windows along the height and the width for an input of shape (c, h, w) that
  /// output_shape accepts: where the padding of "same" falls, for exporters.
  std::pair<WindowAxis, WindowAxis> windows(const Shape& input) const;

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
