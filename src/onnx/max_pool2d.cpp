// ONNX export of MaxPool2D: a MaxPool node on the NCHW input, without padding, windows that
// would run past the border dropped (ceil_mode 0), as layercache's.
#include "exporters.hpp"
#include "layercache/layers/max_pool2d.hpp"

namespace layercache::onnx_export {

Value export_max_pool2d(GraphBuilder& graph, const LayerToExport& layer, const Value& x) {
  const auto& pool = layer.as<MaxPool2D>();
  const auto k = std::int64_t(pool.kernel()), s = std::int64_t(pool.stride());
  return graph.node("MaxPool", {x.name}, pool.output_shape(x.shape), layer.name(),
                    {{"kernel_shape", std::vector<std::int64_t>{k, k}},
                     {"strides", std::vector<std::int64_t>{s, s}}});
}

}  // namespace layercache::onnx_export
