// Flatten: the output shape; the rest is LayerImpl's (passes_input).
#include "layercache/layers/flatten.hpp"

namespace layercache {

Shape Flatten::output_shape(const Shape& input) const {
  if (input.size() == 0)
    throw ShapeError("expected an input shape with at least one value, got " + input.str());
  return Shape{input.size()};
}

// Compiled here once for float and double; the header declares it extern.
template class LayerImpl<Flatten>;

}  // namespace layercache
