// ONNX export of Parallel: every branch reads the input, their outputs merged.
#include "exporters.hpp"
#include "layercache/layers/parallel.hpp"

namespace layercache::onnx_export {

Value export_parallel(GraphBuilder& graph, const LayerToExport& layer, const Value& x) {
  std::vector<Value> outputs;
  for (const Part& part : layer.layer.parts(x.shape))
    outputs.push_back(export_part(graph, layer, part, x));
  return export_merge(graph, layer.as<Parallel>().merge(), outputs, layer.name());
}

}  // namespace layercache::onnx_export
