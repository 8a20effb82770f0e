// MaxPool2D: the maximum of each k×k window of every channel of an image sample.
#pragma once

#include <cstddef>
#include <cstdint>

#include "layercache/layer_impl.hpp"

namespace layercache {

/// Options of MaxPool2D.
struct MaxPool2DOptions {
  /// Side of the square window.
  std::size_t kernel = 2;
  /// Step between neighbouring windows; 0 means "equal to kernel" (PyTorch's default).
  std::size_t stride = 0;
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

/// Max pooling over k×k windows with stride s, no padding, of inputs (c, h, w) into outputs
/// (c, h_out, w_out) with h_out = ⌊(h − k) / s⌋ + 1 and w_out = ⌊(w − k) / s⌋ + 1 (windows that
/// would run past the border are dropped, like PyTorch's default).
///   forward:  y[ci, i, j] = max_{0 ≤ kh, kw < k} x[ci, i·s + kh, j·s + kw]
///   backward: dx[ci, a, b] = Σ over the windows whose maximum is at (a, b) of dy[ci, i, j]
/// Ties: the window is scanned in memory order (down each column, then across columns) and
/// the first maximum wins, so the whole gradient of a window goes to one input. A NaN beats
/// any number, so a NaN in a window propagates to its output (as in PyTorch).
class MaxPool2D : public LayerImpl<MaxPool2D, MaxPool2DCache> {
 public:
  /// The layer's kind.
  static constexpr const char* kind_name = "max_pool2d";
  /// Max pooling with the given window and stride; throws ConfigError on a zero kernel.
  explicit MaxPool2D(MaxPool2DOptions options = {});

  Shape output_shape(const Shape& input) const override;

  /// Side of the window.
  std::size_t kernel() const noexcept { return kernel_; }
  /// Step between windows.
  std::size_t stride() const noexcept { return stride_; }

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
  std::size_t kernel_;
  std::size_t stride_;
};

extern template class LayerImpl<MaxPool2D, MaxPool2DCache>;

}  // namespace layercache
