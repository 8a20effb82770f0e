// MaxPool2D: the maximum of each k×k window of every channel of an image sample.
#pragma once

#include <cstddef>
#include <cstdint>

#include "layercache/layer.hpp"

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
  Shape input;                      ///< (c, h, w)

  const char* kind() const noexcept override { return "max_pool2d"; }
  void for_each_buffer(const std::function<void(const void*, std::size_t)>& f) const override {
    if (argmax.n_elem) f(argmax.memptr(), argmax.n_elem * sizeof(std::uint32_t));
  }
};

/// Max pooling over k×k windows with stride s, no padding, of inputs (c, h, w) into outputs
/// (c, h_out, w_out) with h_out = ⌊(h − k) / s⌋ + 1 and w_out = ⌊(w − k) / s⌋ + 1 (windows that
/// would run past the border are dropped, like PyTorch's default).
///   forward:  y[ci, i, j] = max_{0 ≤ kh, kw < k} x[ci, i·s + kh, j·s + kw]
///   backward: dx[ci, a, b] = Σ over the windows whose maximum is at (a, b) of dy[ci, i, j]
/// Ties: the window is scanned in memory order (down each column, then across columns) and
/// the first maximum wins, so the whole gradient of a window goes to one input. A NaN beats
/// any number, so a NaN in a window propagates to its output (as in PyTorch).
class MaxPool2D : public LayerImpl<MaxPool2D> {
 public:
  /// Max pooling with the given window and stride; throws ConfigError on a zero kernel.
  explicit MaxPool2D(MaxPool2DOptions options = {});

  std::string kind() const override { return "max_pool2d"; }
  Shape output_shape(const Shape& input) const override;

  /// Side of the window.
  std::size_t kernel() const noexcept { return kernel_; }
  /// Step between windows.
  std::size_t stride() const noexcept { return stride_; }

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
  std::size_t kernel_;
  std::size_t stride_;
};

}  // namespace layercache
