// Identity: passes its input through unchanged, without copying it.
#pragma once

#include "layercache/layer_impl.hpp"

namespace layercache {

/// The identity map. Its output is its input buffer itself (no copy); any shape is accepted.
///   forward:  y = x
///   backward: dx = dy
class Identity : public LayerImpl<Identity> {
 public:
  /// The layer's kind.
  static constexpr const char* kind_name = "identity";
  /// The output is the input (see LayerImpl).
  static constexpr bool passes_input = true;
  /// Any shape is accepted; the output has the same shape.
  Shape output_shape(const Shape& input) const override { return input; }
};

// Compiled once in src/layers/identity.cpp.
extern template class LayerImpl<Identity>;

}  // namespace layercache
