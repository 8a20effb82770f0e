// ONNX export of Dense: y = x Wᵀ + b as a Gemm of the (batch × n_in) input.
#include "exporters.hpp"
#include "layercache/layers/dense.hpp"

namespace layercache::onnx_export {

Value export_dense(GraphBuilder& graph, const LayerToExport& layer, const Value& x) {
  const auto& dense = layer.as<Dense>();
  const auto n_in = std::int64_t(dense.n_in()), n_out = std::int64_t(dense.n_out());
  // An image input is read in layercache's memory order, as Dense reads it.
  const Value input = reshape(graph, x, Shape{dense.n_in()}, layer.name("flatten"));
  std::vector<std::string> inputs{
      input.name, graph.constant(layer.name("weight"), {n_out, n_in},
                                 row_major(layer.param("weight", dense.n_out(), dense.n_in())))};
  if (dense.has_bias())
    inputs.push_back(graph.constant(layer.name("bias"), {n_out},
                                    row_major(layer.param("bias", dense.n_out(), 1))));
  return graph.node("Gemm", inputs, Shape{dense.n_out()}, layer.name(),
                    {{"transB", std::int64_t(1)}});
}

}  // namespace layercache::onnx_export
