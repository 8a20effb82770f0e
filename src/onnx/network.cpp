// ONNX export of Network: its children in order, each reading the previous one's output.
#include "exporters.hpp"

namespace layercache::onnx_export {

Value export_network(GraphBuilder& graph, const LayerToExport& layer, const Value& x) {
  Value y = x;
  for (const Part& part : layer.layer.parts(x.shape)) y = export_part(graph, layer, part, y);
  return y;
}

}  // namespace layercache::onnx_export
