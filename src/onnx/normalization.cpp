// ONNX export of the normalizations and dropouts, as they infer: BatchNorm is a
// BatchNormalization node with its running statistics from the state; LayerNorm a
// LayerNormalization over every per-sample axis (opset 17); Dropout and Dropout2D nothing.
#include "exporters.hpp"
#include "layercache/layers/batch_norm.hpp"
#include "layercache/layers/layer_norm.hpp"
#include "layercache/layout.hpp"

namespace layercache::onnx_export {

Value export_batch_norm(GraphBuilder& graph, const LayerToExport& layer, const Value& x) {
  const auto& norm = layer.as<BatchNorm>();
  const std::size_t c = norm.channels();
  auto vector = [&](const Tree<double>& node, const char* name) {
    return graph.constant(layer.name(name), {std::int64_t(c)},
                          row_major(layercache::param(node, name, c, 1)));
  };
  // ONNX normalizes axis 1 of (batch, c) or (batch, c, h, w): the features or the channels.
  return graph.node("BatchNormalization",
                    {x.name, vector(layer.params, "scale"), vector(layer.params, "shift"),
                     vector(layer.state, "running_mean"), vector(layer.state, "running_variance")},
                    x.shape, layer.name(), {{"epsilon", norm.options().eps}});
}

Value export_layer_norm(GraphBuilder& graph, const LayerToExport& layer, const Value& x) {
  const auto& norm = layer.as<LayerNorm>();
  const std::size_t n = x.shape.size();
  // γ and β hold one value per value of the sample, in layercache's order: an image's are
  // reordered into ONNX's (c, h, w).
  auto tensor = [&](const char* name) {
    const arma::mat values = to_row_major(layer.param(name, n, 1), x.shape);
    return graph.constant(layer.name(name), onnx_dims(x.shape),
                          std::vector<double>(values.begin(), values.end()));
  };
  return graph.node("LayerNormalization", {x.name, tensor("scale"), tensor("shift")}, x.shape,
                    layer.name(), {{"axis", std::int64_t(1)}, {"epsilon", norm.options().eps}});
}

Value export_dropout(GraphBuilder&, const LayerToExport&, const Value& x) { return x; }

}  // namespace layercache::onnx_export
