// MaxPool2D: the maximum of each window of every channel of an image sample.
#pragma once

#include <cstddef>
#include <cstdint>

#include "layercache/layer_impl.hpp"
#include "layercache/layers/window2d.hpp"

namespace layercache {

/// Options of MaxPool2D. Sizes are per axis (height, width); a single number means both.
struct MaxPool2DOptions {
  /// Taps of the window along the height and the width.
  Size2 kernel = 2;
  /// Step between neighbouring windows; 0 along an axis means "equal to the kernel" there
  /// (PyTorch's default).
  Size2 stride = 0;
  /// Padding on each side, which no maximum is taken from (as if −∞), smaller than the kernel
  /// along each axis; or Padding2D::same_size() for an output of ⌈input / stride⌉.
  Padding2D padding = 0;
};

/// What MaxPool2D keeps for backward: for every output, where its maximum was found (not the
/// input itself, which backward does not need). Templated on the element type like every
/// cache, so that a float layer's cache is not taken by a double backward.
template <class T>
struct MaxPool2DCache : Cache {
  arma::Mat<std::uint32_t> argmax;  ///< (c·h_out·w_out × batch): input row of each output's maximum

  /// The argmax buffer.
  void for_each_buffer(const BufferVisitor& f) const override { visit_buffer(argmax, f); }
};

/// Max pooling over kh × kw windows with strides (sh, sw) and padding (ph, pw) on each side, of
/// inputs (c, h, w) into outputs (c, h_out, w_out) with h_out = ⌊(h + 2·ph − kh) / sh⌋ + 1
/// (w_out alike; windows that would run past the padded border are dropped, like PyTorch's
/// default).
///   forward:  y[ci, i, j] = max over the window's taps inside the image of x[ci, ...]
///   backward: dx[ci, a, b] = Σ over the windows whose maximum is at (a, b) of dy[ci, i, j]
/// Ties: the window is scanned in memory order (down each column, then across columns) and
/// the first maximum wins, so the whole gradient of a window goes to one input. A NaN beats
/// any number, so a NaN in a window propagates to its output (as in PyTorch).
class MaxPool2D : public LayerImpl<MaxPool2D, MaxPool2DCache> {
 public:
  /// The layer's kind.
  static constexpr const char* kind_name = "max_pool2d";
  /// Max pooling with the given window, stride and padding; throws ConfigError on a zero
  /// kernel or a padding not smaller than the kernel.
  explicit MaxPool2D(MaxPool2DOptions options = {});

  Shape output_shape(const Shape& input) const override;

  /// Taps of the window.
  Size2 kernel() const noexcept { return windows_.kernel; }
  /// Step between windows (the kernel where the options said 0).
  Size2 stride() const noexcept { return windows_.stride; }
  /// Padding on each side.
  Padding2D padding() const noexcept { return windows_.padding; }
  /// The windows along the height and the width for an input that output_shape accepts.
  ImageWindows windows(const Shape& input) const;

  /// y = the maximum of each window; the cache keeps where it was (see LayerImpl).
  template <class T>
  void forward_t(const Tensors<T>& params, const ConstBuffer<T>& x, arma::Mat<T>& y,
                 MaxPool2DCache<T>& cache, const LayerCall<T>& call) const;
  /// dx: each dy added where its window's maximum was (see LayerImpl).
  template <class T>
  void backward_t(const Tensors<T>& params, const MaxPool2DCache<T>& cache,
                  const arma::Mat<T>& dy, Gradients<T>& grads) const;
  /// y = the maximum of each window (see LayerImpl).
  template <class T>
  void infer_t(const Tensors<T>& params, const arma::Mat<T>& x, arma::Mat<T>& y,
               const LayerCall<T>& call) const;

 private:
  WindowOptions windows_;
};

extern template class LayerImpl<MaxPool2D, MaxPool2DCache>;

}  // namespace layercache
