// Reshape: reads each sample with another shape of the same size, without copying.
#pragma once

#include "layercache/layer_impl.hpp"

namespace layercache {

/// Gives every sample the shape `target` (same number of values). The values keep their order
/// (for images: channels one after another, each column-major), so the output is the input
/// buffer itself (no copy).
///   forward:  y = x            (same memory; only the shape changes)
///   backward: dx = dy
class Reshape : public LayerImpl<Reshape> {
 public:
  /// The layer's kind.
  static constexpr const char* kind_name = "reshape";
  /// The output is the input (see LayerImpl).
  static constexpr bool passes_input = true;
  /// A reshape into `target`; throws ConfigError when the target has no values.
  explicit Reshape(Shape target);
  /// `target`; throws ShapeError unless the input has as many values.
  Shape output_shape(const Shape& input) const override;
  /// The shape every sample takes.
  const Shape& target() const noexcept { return target_; }

 private:
  Shape target_;
};

// Compiled once in src/layers/reshape.cpp.
extern template class LayerImpl<Reshape>;

}  // namespace layercache
