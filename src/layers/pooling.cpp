// What the pooling layers share: their checks of options and input shapes.
#include "pooling.hpp"

#include "layercache/errors.hpp"
#include "layercache/sizes.hpp"

namespace layercache::detail {

Shape pool_output_shape(const Shape& input, const WindowOptions& options,
                        std::size_t max_values) {
  if (input.rank() != 3)
    throw ShapeError("expected input (channels, height, width), got " + input.str() +
                     "; a pooling layer needs the image shape, e.g. Shape{1, 28, 28}");
  if (input.size() > max_values)
    throw ShapeError("expected input of at most " + std::to_string(max_values) +
                     " values per sample, got " + input.str());
  const PoolGeometry g(options, input);
  return Shape{g.channels, g.rows.output, g.cols.output};
}

void check_pool_options(const char* layer, const WindowOptions& o) {
  if (o.kernel.height == 0 || o.kernel.width == 0 || o.stride.height == 0 || o.stride.width == 0)
    throw ConfigError(std::string(layer) + " needs a positive kernel and stride, got kernel " +
                      o.kernel.str() + ", stride " + o.stride.str());
  if (!o.padding.same && (o.padding.height >= o.kernel.height || o.padding.width >= o.kernel.width))
    throw ConfigError(std::string(layer) + " needs padding smaller than the kernel along each " +
                      "axis (every window must hold an input value), got padding " +
                      o.padding.str() + " for kernel " + o.kernel.str());
  checked_mul(2, o.padding.height, "2 × padding height");
  checked_mul(2, o.padding.width, "2 × padding width");
}

}  // namespace layercache::detail
