// ONNX export of Residual: y = x + f(x), or p(x) + f(x) with a projection, as one Add.
#include "exporters.hpp"

namespace layercache::onnx_export {

Value export_residual(GraphBuilder& graph, const LayerToExport& layer, const Value& x) {
  const std::vector<Part> parts = layer.layer.parts(x.shape);  // inner, then projection
  const Value fx = export_part(graph, layer, parts[0], x);
  const Value skip = parts.size() > 1 ? export_part(graph, layer, parts[1], x) : x;
  return graph.node("Add", {skip.name, fx.name}, fx.shape, layer.name());
}

}  // namespace layercache::onnx_export
