// Sizes of the 2-D windows that convolution and pooling slide over an image: a pair of sizes
// (height, width) that a single number sets to a square, and a padding that can also be "same".
#pragma once

#include <cstddef>
#include <string>

#include "layercache/shape.hpp"

namespace layercache {

/// A size per image axis, (height, width). A single number means the same along both:
/// `.kernel = 3` is 3 × 3, `.kernel = {3, 5}` is 3 high and 5 wide.
struct Size2 {
  std::size_t height = 0;  ///< along the image's rows
  std::size_t width = 0;   ///< along the image's columns

  /// Zero along both axes.
  constexpr Size2() = default;
  /// `both` along both axes.
  constexpr Size2(std::size_t both) noexcept : height(both), width(both) {}  // NOLINT: implicit by design
  /// `h` along the height, `w` along the width.
  constexpr Size2(std::size_t h, std::size_t w) noexcept : height(h), width(w) {}

  /// Equal along both axes.
  friend constexpr bool operator==(const Size2& a, const Size2& b) noexcept {
    return a.height == b.height && a.width == b.width;
  }
  /// "3" for a square size, "3 × 5" otherwise.
  std::string str() const;
};

/// Zeros around each channel of an image: `height` rows above and below, `width` columns left
/// and right; or "same" (Padding2D::same_size()), as much as makes the output ⌈input / stride⌉
/// along each axis, split evenly with any odd one on the bottom / right (ONNX's SAME_UPPER;
/// PyTorch's padding="same" for stride 1).
struct Padding2D {
  std::size_t height = 0;  ///< rows of zeros above and below
  std::size_t width = 0;   ///< columns of zeros on the left and on the right
  bool same = false;       ///< computed from the input instead (height and width are then 0)

  /// No padding.
  constexpr Padding2D() = default;
  /// `both` rows above and below, and columns left and right.
  constexpr Padding2D(std::size_t both) noexcept : height(both), width(both) {}  // NOLINT: implicit by design
  /// `h` rows above and below, `w` columns left and right.
  constexpr Padding2D(std::size_t h, std::size_t w) noexcept : height(h), width(w) {}
  /// The "same" padding.
  static constexpr Padding2D same_size() noexcept {
    Padding2D p;
    p.same = true;
    return p;
  }
  /// "1", "1 × 2" or "same".
  std::string str() const;
};

/// Where the windows of one axis fall, for one input side.
struct WindowAxis {
  std::size_t input = 0;       ///< input side
  std::size_t output = 0;      ///< number of windows
  std::size_t kernel = 0;      ///< window side in taps
  std::size_t stride = 0;      ///< step between windows
  std::size_t dilation = 1;    ///< step between taps
  std::size_t pad_before = 0;  ///< zeros before the first input value
  std::size_t pad_after = 0;   ///< zeros after the last one (the windows may leave some unread)

  /// Input values one window spans: dilation·(kernel − 1) + 1.
  std::size_t span() const noexcept { return dilation * (kernel - 1) + 1; }
};

/// How windows slide over an image: taps, steps between windows, steps between taps, padding.
struct WindowOptions {
  Size2 kernel;           ///< taps along the height and the width
  Size2 stride;           ///< step between windows
  Size2 dilation = 1;     ///< step between taps
  Padding2D padding;      ///< zeros around each channel, or "same"
};

/// The windows along the height and the width of an image of shape (c, h, w).
struct ImageWindows {
  WindowAxis height;  ///< along each channel's rows
  WindowAxis width;   ///< along each channel's columns

  /// Output pixels per channel: height.output × width.output.
  std::size_t pixels() const noexcept { return height.output * width.output; }
};

/// The windows of `options` over an image of shape `input` (rank 3, checked by the caller),
/// every size checked (layercache/sizes.hpp). Throws ShapeError when the padded image is
/// smaller than one window ("expected input (c, height, width) of at least 3 × 3 after
/// padding 0, got (1, 2, 2)") or a size overflows. Allocates nothing unless it throws.
ImageWindows image_windows(const Shape& input, const WindowOptions& options);

}  // namespace layercache
