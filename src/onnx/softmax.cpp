// ONNX export of Softmax and LogSoftmax, taken over all values of a sample: over axis 1 of a
// vector; a sample of another shape is flattened first and given its shape back after (the
// order of the values does not matter to a softmax over all of them).
#include "exporters.hpp"

namespace layercache::onnx_export {
namespace {

Value softmax_over_sample(GraphBuilder& graph, const LayerToExport& layer, const Value& x,
                          const char* op) {
  if (x.shape.rank() == 1)
    return graph.node(op, {x.name}, x.shape, layer.name(), {{"axis", std::int64_t(1)}});
  const Value flat = graph.node("Flatten", {x.name}, Shape{x.shape.size()}, layer.name("flatten"),
                                {{"axis", std::int64_t(1)}});
  const Value y = graph.node(op, {flat.name}, flat.shape, layer.name("values"),
                             {{"axis", std::int64_t(1)}});
  std::vector<std::int64_t> dims = onnx_dims(x.shape);
  dims.insert(dims.begin(), 0);  // the batch size is kept
  return graph.node("Reshape", {y.name, graph.int64s(layer.name("shape"), dims)}, x.shape,
                    layer.name());
}

}  // namespace

Value export_softmax(GraphBuilder& graph, const LayerToExport& layer, const Value& x) {
  return softmax_over_sample(graph, layer, x, "Softmax");
}

Value export_log_softmax(GraphBuilder& graph, const LayerToExport& layer, const Value& x) {
  return softmax_over_sample(graph, layer, x, "LogSoftmax");
}

}  // namespace layercache::onnx_export
