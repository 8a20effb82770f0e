// The ONNX graph an export builds, seen by the layer exporters without protobuf: values
// (tensor names with the layercache shape of one sample), nodes and constant tensors. Only
// graph.cpp includes ONNX's protobuf headers, so a layer's exporter compiles in a moment.
//
// Layout: a value of layercache shape (c, h, w) is the ONNX tensor (batch, c, h, w) (NCHW);
// a value of any other shape (d₁, ..., dₖ) is (batch, d₁, ..., dₖ). layercache keeps each
// image channel column-major, ONNX row-major, so only a change of how values are read (a
// flatten or reshape from or to an image) needs a transpose: reshape() below sees to it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "layercache/shape.hpp"

namespace layercache::onnx_export {

/// A tensor of the graph: its ONNX name, and the layercache shape of one sample.
struct Value {
  std::string name;  ///< the ONNX tensor name
  Shape shape;       ///< per-sample shape; the ONNX tensor is (batch, onnx_dims(shape))
};

/// A node attribute: an integer, a float, or a list of integers.
struct Attribute {
  std::string name;                                                     ///< e.g. "strides"
  std::variant<std::int64_t, double, std::vector<std::int64_t>> value;  ///< its value
};

/// The element type of the exported tensors.
enum class Element { float32, float64 };

/// The ONNX dimensions of a per-sample shape, batch excluded: (c, h, w) for an image.
std::vector<std::int64_t> onnx_dims(const Shape& shape);

/// The model being built: one input, nodes in order, constant tensors (initializers).
class GraphBuilder {
 public:
  /// A graph whose input `input_name` holds samples of `input_shape` (batch dimension
  /// `batch_name`), with tensors of type `element`; finish() names its output `output_name`.
  GraphBuilder(Element element, const Shape& input_shape, const std::string& input_name,
               const std::string& output_name, const std::string& batch_name);
  ~GraphBuilder();
  GraphBuilder(const GraphBuilder&) = delete;
  GraphBuilder& operator=(const GraphBuilder&) = delete;

  /// The graph's input.
  const Value& input() const noexcept;

  /// Adds a node `op` reading the tensors `inputs` and returns its one output, a value of
  /// per-sample shape `shape`. `name` (a layer path, "conv2d1" or "block/gelu1/erf") names
  /// the node and its output, made unique.
  Value node(const std::string& op, const std::vector<std::string>& inputs, const Shape& shape,
             const std::string& name, const std::vector<Attribute>& attributes = {});
  /// Adds a constant tensor of the element type with dimensions `dims`, its values given in
  /// row-major order; returns its name (`name` made unique, e.g. "dense1/weight").
  std::string constant(const std::string& name, const std::vector<std::int64_t>& dims,
                       const std::vector<double>& values);
  /// A constant scalar of the element type (shared by every node that needs the same value).
  std::string scalar(double value);
  /// While a node that applies another node's layer again is exported (weight sharing in a
  /// Graph): a constant asked for under the path `path` is the one already made under
  /// `owner` with the same rest of its name when its values are the same, so shared weights
  /// are stored once. An empty `path` ends it.
  void share_constants(const std::string& path, const std::string& owner);
  /// Adds a constant 1-D int64 tensor (a Reshape's target shape); returns its name.
  std::string int64s(const std::string& name, const std::vector<std::int64_t>& values);

  /// Makes `output` the graph's output, names the graph and returns the serialized model.
  std::string finish(const Value& output, const std::string& graph_name);

 private:
  struct Model;
  std::string unique(const std::string& name);
  std::unique_ptr<Model> model_;
};

/// `x` read with per-sample shape `shape` (of the same size), as layercache's Reshape reads
/// it: the values keep layercache's memory order. A plain Reshape node between shapes that
/// are not images; around an image, a Transpose of each channel too. Nothing at all when the
/// shape does not change. `name` names the nodes.
Value reshape(GraphBuilder& graph, const Value& x, const Shape& shape, const std::string& name);

}  // namespace layercache::onnx_export
