// AvgPool2D and GlobalAvgPool2D: forward and backward side by side.
//
// A sample is one column: pixel (row, col) of channel ci is at ci·H·W + col·H + row
// (docs/convolution.md). Padding is zeros: it adds nothing to a window's sum, and counts in
// its divisor only with count_padding.
#include "layercache/layers/avg_pool2d.hpp"

#include <algorithm>

#include "layercache/sizes.hpp"

#include "pooling.hpp"

namespace layercache {
namespace {

using detail::PoolGeometry;

// The divisor of window w: the whole window, or its taps inside the image.
template <class T>
T divisor(const PoolGeometry& g, const detail::Window& w, bool count_padding) {
  return count_padding ? T(g.rows.kernel * g.cols.kernel) : T(w.down * w.across);
}

}  // namespace

// A zero stride along an axis means the kernel's size there.
AvgPool2D::AvgPool2D(AvgPool2DOptions options) : options_(options) {
  options_.stride = {options.stride.height ? options.stride.height : options.kernel.height,
                     options.stride.width ? options.stride.width : options.kernel.width};
  windows_ = {.kernel = options_.kernel, .stride = options_.stride, .padding = options_.padding};
  detail::check_pool_options("AvgPool2D", windows_);
}

Shape AvgPool2D::output_shape(const Shape& input) const {
  return detail::pool_output_shape(input, windows_, max_size);
}

ImageWindows AvgPool2D::windows(const Shape& input) const {
  output_shape(input);  // the checks
  return image_windows(input, windows_);
}

template <class T>
void AvgPool2D::forward_t(const Tensors<T>&, const ConstBuffer<T>& x, arma::Mat<T>& y,
                          NoCache<T>&, const LayerCall<T>& call) const {
  const PoolGeometry g(windows_, call.input());
  const std::size_t H = g.height;
  for (std::size_t n = 0; n < x->n_cols; ++n) {
    const T* sample = x->colptr(n);
    T* out = y.colptr(n);
    detail::for_each_window(g, [&](const detail::Window& w) {
      T sum = 0;
      for (std::size_t kw = 0; kw < w.across; ++kw) {
        const T* column = sample + w.first + kw * H;
        for (std::size_t kh = 0; kh < w.down; ++kh) sum += column[kh];
      }
      out[w.output] = sum / divisor<T>(g, w, options_.count_padding);
    });
  }
}

template <class T>
void AvgPool2D::backward_t(const Tensors<T>&, const NoCache<T>& cache, const arma::Mat<T>& dy,
                           Gradients<T>& grads) const {
  const PoolGeometry g(windows_, cache.input_shape());
  const std::size_t H = g.height;
  arma::Mat<T>& dx = *grads.dx();  // backward runs only when dx is wanted (no params)
  for (std::size_t n = 0; n < dy.n_cols; ++n) {
    const T* d = dy.colptr(n);
    T* column = dx.colptr(n);
    std::fill(column, column + g.in_size(), T(0));
    // windows may overlap (stride < kernel): gradients are added
    detail::for_each_window(g, [&](const detail::Window& w) {
      const T share = d[w.output] / divisor<T>(g, w, options_.count_padding);
      for (std::size_t kw = 0; kw < w.across; ++kw) {
        T* target = column + w.first + kw * H;
        for (std::size_t kh = 0; kh < w.down; ++kh) target[kh] += share;
      }
    });
  }
}

template class LayerImpl<AvgPool2D>;

Shape GlobalAvgPool2D::output_shape(const Shape& input) const {
  if (input.rank() != 3)
    throw ShapeError("expected input (channels, height, width), got " + input.str() +
                     "; a pooling layer needs the image shape, e.g. Shape{1, 28, 28}");
  if (input[1] == 0 || input[2] == 0)
    throw ShapeError("expected input (channels, height, width) of at least 1 × 1, got " +
                     input.str());
  return Shape{input[0]};
}

template <class T>
void GlobalAvgPool2D::forward_t(const Tensors<T>&, const ConstBuffer<T>& x, arma::Mat<T>& y,
                                NoCache<T>&, const LayerCall<T>& call) const {
  const std::size_t c = call.input()[0], pixels = call.input()[1] * call.input()[2];
  for (std::size_t n = 0; n < x->n_cols; ++n)
    for (std::size_t ci = 0; ci < c; ++ci) {
      const T* channel = x->colptr(n) + ci * pixels;
      T sum = 0;
      for (std::size_t p = 0; p < pixels; ++p) sum += channel[p];
      y(ci, n) = sum / T(pixels);
    }
}

template <class T>
void GlobalAvgPool2D::backward_t(const Tensors<T>&, const NoCache<T>& cache,
                                 const arma::Mat<T>& dy, Gradients<T>& grads) const {
  const std::size_t c = cache.input_shape()[0];
  const std::size_t pixels = cache.input_shape()[1] * cache.input_shape()[2];
  arma::Mat<T>& dx = *grads.dx();
  for (std::size_t n = 0; n < dy.n_cols; ++n)
    for (std::size_t ci = 0; ci < c; ++ci) {
      T* channel = dx.colptr(n) + ci * pixels;
      std::fill(channel, channel + pixels, dy(ci, n) / T(pixels));
    }
}

template class LayerImpl<GlobalAvgPool2D>;

}  // namespace layercache
