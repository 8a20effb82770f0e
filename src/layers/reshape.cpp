// Reshape: the output shape; the rest is LayerImpl's (passes_input).
#include "layercache/layers/reshape.hpp"

namespace layercache {

Reshape::Reshape(Shape target) : target_(target) {
  if (target.size() == 0)
    throw ConfigError("Reshape needs a target shape with at least one value, got " + target.str());
}

Shape Reshape::output_shape(const Shape& input) const {
  if (input.size() != target_.size())
    throw ShapeError("expected input of " + std::to_string(target_.size()) +
                     " values to reshape into " + target_.str() + ", got " + input.str() +
                     " with " + std::to_string(input.size()));
  return target_;
}

// Compiled here once for float and double; the header declares it extern.
template class LayerImpl<Reshape>;

}  // namespace layercache
