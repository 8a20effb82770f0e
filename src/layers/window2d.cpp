// Window geometry along one image axis, shared by convolution and pooling: the output side
// and the padding, every size checked (layercache/sizes.hpp) without allocating unless it fails.
#include "layercache/layers/window2d.hpp"

#include "layercache/errors.hpp"
#include "layercache/sizes.hpp"

namespace layercache {
namespace {

// a·b and a + b, checked; the message ("height: dilation × (kernel − 1) = ...") is built only
// when the check fails, since forward recomputes the geometry on every call.
std::size_t mul(std::size_t a, std::size_t b, const char* axis, const char* what) {
  std::size_t r = 0;
  if (__builtin_mul_overflow(a, b, &r) || r > max_size)
    return checked_mul<ShapeError>(a, b, std::string(axis) + ": " + what);
  return r;
}
std::size_t add(std::size_t a, std::size_t b, const char* axis, const char* what) {
  std::size_t r = 0;
  if (__builtin_add_overflow(a, b, &r) || r > max_size)
    return checked_add<ShapeError>(a, b, std::string(axis) + ": " + what);
  return r;
}

}  // namespace

std::string Size2::str() const {
  return height == width ? std::to_string(height)
                         : std::to_string(height) + " × " + std::to_string(width);
}

std::string Padding2D::str() const {
  return same ? "same" : Size2(height, width).str();
}

namespace {

// The windows along one axis of side `input`; output stays 0 when the padded input is
// smaller than one window.
WindowAxis window_axis(const char* axis, std::size_t input, std::size_t kernel,
                       std::size_t stride, std::size_t dilation, std::size_t padding, bool same) {
  WindowAxis a;
  a.input = input;
  a.kernel = kernel;
  a.stride = stride;
  a.dilation = dilation;
  const std::size_t span = add(mul(dilation, kernel - 1, axis, "dilation × (kernel − 1)"), 1, axis,
                               "dilation × (kernel − 1) + 1");
  if (same) {
    a.output = input / stride + (input % stride != 0);  // ⌈input / stride⌉
    const std::size_t reach =
        a.output == 0 ? 0
                      : add(mul(a.output - 1, stride, axis, "(output − 1) × stride"), span, axis,
                            "(output − 1) × stride + window span");
    const std::size_t total = reach > input ? reach - input : 0;
    a.pad_before = total / 2;
    a.pad_after = total - a.pad_before;
    return a;
  }
  a.pad_before = a.pad_after = padding;
  const std::size_t padded =
      add(input, mul(2, padding, axis, "2 × padding"), axis, "side + 2 × padding");
  if (padded >= span && input > 0) a.output = (padded - span) / stride + 1;
  return a;
}

}  // namespace

ImageWindows image_windows(const Shape& input, const WindowOptions& o) {
  const bool same = o.padding.same;
  ImageWindows w{window_axis("height", input[1], o.kernel.height, o.stride.height,
                             o.dilation.height, o.padding.height, same),
                 window_axis("width", input[2], o.kernel.width, o.stride.width, o.dilation.width,
                             o.padding.width, same)};
  if (w.height.output == 0 || w.width.output == 0)
    throw ShapeError("expected input (" + std::to_string(input[0]) +
                     ", height, width) of at least " +
                     std::to_string(w.height.span()) + " × " + std::to_string(w.width.span()) +
                     " after padding " +
                     o.padding.str() + ", got " + input.str());
  return w;
}

}  // namespace layercache
