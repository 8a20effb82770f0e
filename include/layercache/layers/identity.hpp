// Identity: passes its input through unchanged, without copying it.
#pragma once

#include "layercache/layers/pass_through.hpp"

namespace layercache {

/// The identity map. Its output is its input buffer itself (no copy); any shape is accepted.
///   forward:  y = x
///   backward: dx = dy
class Identity : public PassThroughLayer<Identity> {
 public:
  /// The layer's kind and the name of its cache.
  static constexpr const char* name = "identity";
  /// Any shape is accepted; the output has the same shape.
  Shape output_shape(const Shape& input) const override { return input; }
};

// Instantiated once in src/layers/identity.cpp, so user programs do not compile it again.
extern template class LayerImpl<Identity>;

}  // namespace layercache
