// AvgPool2D: the mean of each window of every channel of an image sample.
#pragma once

#include <cstddef>

#include "layercache/layer_impl.hpp"
#include "layercache/layers/window2d.hpp"

namespace layercache {

/// Options of AvgPool2D. Sizes are per axis (height, width); a single number means both.
struct AvgPool2DOptions {
  /// Taps of the window along the height and the width.
  Size2 kernel = 2;
  /// Step between neighbouring windows; 0 along an axis means "equal to the kernel" there.
  Size2 stride = 0;
  /// Zeros on each side, smaller than the kernel along each axis; or Padding2D::same_size().
  Padding2D padding = 0;
  /// Divide by the whole window, padding zeros included (PyTorch's count_include_pad = True);
  /// false divides by the taps inside the image only.
  bool count_padding = true;
};

/// Average pooling over kh × kw windows with strides (sh, sw) and zero padding (ph, pw) on each
/// side, of inputs (c, h, w) into outputs (c, h_out, w_out), h_out = ⌊(h + 2·ph − kh) / sh⌋ + 1
/// (w_out alike). With n the divisor of a window (kh·kw, or its taps inside the image when
/// count_padding is false):
///   forward:  y[ci, i, j] = (1/n) Σ over the window's taps inside the image of x[ci, ...]
///   backward: dx[ci, a, b] = Σ over the windows holding (a, b) of dy[ci, i, j] / n
/// No params; the cache keeps nothing but the shapes every cache carries.
class AvgPool2D : public LayerImpl<AvgPool2D> {
 public:
  /// The layer's kind.
  static constexpr const char* kind_name = "avg_pool2d";
  /// Average pooling with the given window, stride and padding; throws ConfigError on a zero
  /// kernel or a padding not smaller than the kernel.
  explicit AvgPool2D(AvgPool2DOptions options = {});

  Shape output_shape(const Shape& input) const override;

  /// The options, with the stride the layer uses (the kernel where the options said 0).
  const AvgPool2DOptions& options() const noexcept { return options_; }
  /// The windows along the height and the width for an input that output_shape accepts.
  ImageWindows windows(const Shape& input) const;

  /// y = the mean of each window (see LayerImpl).
  template <class T>
  void forward_t(const Tensors<T>& params, const ConstBuffer<T>& x, arma::Mat<T>& y,
                 NoCache<T>& cache, const LayerCall<T>& call) const;
  /// dx: each dy / n spread over its window (see LayerImpl).
  template <class T>
  void backward_t(const Tensors<T>& params, const NoCache<T>& cache, const arma::Mat<T>& dy,
                  Gradients<T>& grads) const;

 private:
  AvgPool2DOptions options_;
  WindowOptions windows_;
};

/// Global average pooling: the mean of every channel of an image (c, h, w), into (c).
///   forward:  y[ci] = (1 / (h·w)) Σ_{a, b} x[ci, a, b]
///   backward: dx[ci, a, b] = dy[ci] / (h·w)
/// No params; the cache keeps nothing but the shapes every cache carries.
class GlobalAvgPool2D : public LayerImpl<GlobalAvgPool2D> {
 public:
  /// The layer's kind.
  static constexpr const char* kind_name = "global_avg_pool2d";

  Shape output_shape(const Shape& input) const override;

  /// y = the mean of each channel (see LayerImpl).
  template <class T>
  void forward_t(const Tensors<T>& params, const ConstBuffer<T>& x, arma::Mat<T>& y,
                 NoCache<T>& cache, const LayerCall<T>& call) const;
  /// dx = dy / (h·w) over each channel (see LayerImpl).
  template <class T>
  void backward_t(const Tensors<T>& params, const NoCache<T>& cache, const arma::Mat<T>& dy,
                  Gradients<T>& grads) const;
};

extern template class LayerImpl<AvgPool2D>;
extern template class LayerImpl<GlobalAvgPool2D>;

}  // namespace layercache
