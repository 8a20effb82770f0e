// Flatten: (channels, height, width) → (channels·height·width), without copying.
#pragma once

#include "layercache/layer_impl.hpp"

namespace layercache {

/// Reads an image sample as a vector. A sample's values are already one contiguous column, so
/// the values stay where they are: the output is the input buffer itself (no copy).
///   forward:  y = x            (same memory; only the shape changes)
///   backward: dx = dy
class Flatten : public LayerImpl<Flatten> {
 public:
  /// The layer's kind.
  static constexpr const char* kind_name = "flatten";
  /// The output is the input (see LayerImpl).
  static constexpr bool passes_input = true;
  /// (d₁, ..., dₖ) → (d₁·…·dₖ); throws ShapeError for a shape without values.
  Shape output_shape(const Shape& input) const override;
};

// Compiled once in src/layers/flatten.cpp.
extern template class LayerImpl<Flatten>;

}  // namespace layercache
