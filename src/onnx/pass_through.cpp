// ONNX export of the layers that change how a sample is read, never its values: Identity adds
// nothing; Flatten and Reshape read the values in layercache's order (graph.hpp: reshape).
#include "exporters.hpp"
#include "layercache/layers/flatten.hpp"
#include "layercache/layers/reshape.hpp"

namespace layercache::onnx_export {

Value export_identity(GraphBuilder&, const LayerToExport&, const Value& x) { return x; }

Value export_flatten(GraphBuilder& graph, const LayerToExport& layer, const Value& x) {
  return reshape(graph, x, layer.as<Flatten>().output_shape(x.shape), layer.name());
}

Value export_reshape(GraphBuilder& graph, const LayerToExport& layer, const Value& x) {
  return reshape(graph, x, layer.as<Reshape>().target(), layer.name());
}

}  // namespace layercache::onnx_export
