// summary(): a table of a layer's nested structure, its parameter counts and the cache bytes of
// one training step per node (docs/layers.md, "Seeing a network").
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "layercache/layer.hpp"

namespace layercache {

/// Options of summary().
struct SummaryOptions {
  /// Samples in the training forward whose cache bytes are reported; 0 runs no forward and
  /// leaves the cache column out.
  std::size_t batch = 1;
  /// Seed of that forward's random params and input (the byte counts do not depend on it).
  std::uint64_t seed = 0;
};

/// A table with one row per layer, indented by nesting depth: its path, kind, per-sample
/// output shape, parameter count and the bytes its cache holds after one training forward of
/// `options.batch` samples of element type T (a combinator's row counts its whole subtree,
/// each shared buffer once). A use of another node's layer (a Graph node with `shares`) is a
/// row of its own with no parameters. The last lines give the total parameter count and the
/// cache bytes of the whole step. Throws what layer.output_shape(input) throws.
template <class T = float>
std::string summary(const Layer& layer, const Shape& input, const SummaryOptions& options = {});

}  // namespace layercache
