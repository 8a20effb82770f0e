// What the pooling layers share (internal): the image check, the window geometry, and the
// taps of each window that fall inside the image.
#pragma once

#include <algorithm>
#include <cstddef>

#include "layercache/layers/window2d.hpp"

namespace layercache::detail {

/// Sizes of one pooling: the input image (c, h, w) and the windows along its two axes.
struct PoolGeometry {
  std::size_t channels = 0, height = 0, width = 0;  ///< input (c, h, w)
  WindowAxis rows, cols;  ///< the windows along each channel's rows (height) and columns (width)

  /// The geometry of `options` over an input of shape (c, h, w) (checked by pool_output_shape).
  PoolGeometry(const WindowOptions& options, const Shape& input)
      : channels(input[0]), height(input[1]), width(input[2]) {
    const ImageWindows w = image_windows(input, options);
    rows = w.height;
    cols = w.width;
  }
  /// Output pixels per channel.
  std::size_t pixels() const noexcept { return rows.output * cols.output; }
  /// Values of one input sample.
  std::size_t in_size() const noexcept { return channels * height * width; }
  /// Values of one output sample.
  std::size_t out_size() const noexcept { return channels * pixels(); }
};

/// The taps [first, last) of window r along `a` that fall inside the input, and the input
/// index of tap `first`.
struct TapRange {
  std::size_t first = 0, last = 0, input = 0;
};
inline TapRange taps_inside(const WindowAxis& a, std::size_t r) noexcept {
  const std::size_t start = r * a.stride;  // in padded coordinates
  const std::size_t first = start >= a.pad_before ? 0 : a.pad_before - start;
  const std::size_t end = a.pad_before + a.input;  // padded index past the last input value
  const std::size_t last = std::min(a.kernel, end > start ? end - start : 0);
  return {first, std::max(first, last), start + first - a.pad_before};
}

/// One window of one channel: its output index within the sample, the input index of its
/// first tap inside the image, and how many taps inside the image it has down (rows) and
/// across (columns); tap (kh, kw) inside is at input index first + kw·height + kh.
struct Window {
  std::size_t output = 0, first = 0, down = 0, across = 0;
};

/// Calls f(window) for every window of every channel of one sample, in output order.
template <class F>
void for_each_window(const PoolGeometry& g, F f) {
  for (std::size_t ci = 0; ci < g.channels; ++ci)
    for (std::size_t j = 0; j < g.cols.output; ++j) {
      const TapRange across = taps_inside(g.cols, j);
      for (std::size_t i = 0; i < g.rows.output; ++i) {
        const TapRange down = taps_inside(g.rows, i);
        f(Window{(ci * g.cols.output + j) * g.rows.output + i,
                 ci * g.height * g.width + across.input * g.height + down.input,
                 down.last - down.first, across.last - across.first});
      }
    }
}

/// The output shape (c, h_out, w_out) of pooling an input of shape (c, h, w) with `options`;
/// ShapeError for another rank, an image smaller than a
/// window, or more values per sample than `max_values`.
Shape pool_output_shape(const Shape& input, const WindowOptions& options,
                        std::size_t max_values);

/// Checks pooling options: a positive kernel and stride, and padding smaller than the kernel
/// along each axis (so every window holds at least one input value); ConfigError naming
/// `layer` otherwise.
void check_pool_options(const char* layer, const WindowOptions& options);

}  // namespace layercache::detail
