// Flatten: (channels, height, width) → (channels·height·width), without copying.
#pragma once

#include "layercache/layers/pass_through.hpp"

namespace layercache {

/// Reads an image sample as a vector. A sample's values are already one contiguous column, so
/// the values stay where they are: the output is the input buffer itself (no copy).
///   forward:  y = x            (same memory; only the shape changes)
///   backward: dx = dy
class Flatten : public PassThroughLayer<Flatten> {
 public:
  /// The layer's kind and the name of its cache.
  static constexpr const char* name = "flatten";
  /// (d₁, ..., dₖ) → (d₁·…·dₖ); throws ShapeError for a shape without values.
  Shape output_shape(const Shape& input) const override;
};

// Instantiated once in src/layers/flatten.cpp, so user programs do not compile it again.
extern template class LayerImpl<Flatten>;

}  // namespace layercache
