// ONNX export of the element-wise activations: each maps every value, whatever the shape, so
// the layout needs no care. GELU has no operator before opset 20, SiLU none at all and Mish
// none before opset 18: they are spelled out.
#include <cmath>

#include "exporters.hpp"
#include "layercache/layers/activations.hpp"

namespace layercache::onnx_export {

Value export_relu(GraphBuilder& graph, const LayerToExport& layer, const Value& x) {
  return graph.node("Relu", {x.name}, x.shape, layer.name());
}

Value export_leaky_relu(GraphBuilder& graph, const LayerToExport& layer, const Value& x) {
  return graph.node("LeakyRelu", {x.name}, x.shape, layer.name(),
                    {{"alpha", layer.as<LeakyReLU>().slope()}});
}

Value export_elu(GraphBuilder& graph, const LayerToExport& layer, const Value& x) {
  return graph.node("Elu", {x.name}, x.shape, layer.name(), {{"alpha", layer.as<ELU>().alpha()}});
}

Value export_sigmoid(GraphBuilder& graph, const LayerToExport& layer, const Value& x) {
  return graph.node("Sigmoid", {x.name}, x.shape, layer.name());
}

Value export_tanh(GraphBuilder& graph, const LayerToExport& layer, const Value& x) {
  return graph.node("Tanh", {x.name}, x.shape, layer.name());
}

Value export_softplus(GraphBuilder& graph, const LayerToExport& layer, const Value& x) {
  return graph.node("Softplus", {x.name}, x.shape, layer.name());
}

Value export_selu(GraphBuilder& graph, const LayerToExport& layer, const Value& x) {
  return graph.node("Selu", {x.name}, x.shape, layer.name(),
                    {{"alpha", SELU::alpha}, {"gamma", SELU::scale}});
}

Value export_hardswish(GraphBuilder& graph, const LayerToExport& layer, const Value& x) {
  return graph.node("HardSwish", {x.name}, x.shape, layer.name());
}

// y = x·σ(x)
Value export_silu(GraphBuilder& graph, const LayerToExport& layer, const Value& x) {
  const Value gate = graph.node("Sigmoid", {x.name}, x.shape, layer.name("sigmoid"));
  return graph.node("Mul", {x.name, gate.name}, x.shape, layer.name());
}

// y = x·tanh(softplus(x))
Value export_mish(GraphBuilder& graph, const LayerToExport& layer, const Value& x) {
  const Value soft = graph.node("Softplus", {x.name}, x.shape, layer.name("softplus"));
  const Value gate = graph.node("Tanh", {soft.name}, x.shape, layer.name("tanh"));
  return graph.node("Mul", {x.name, gate.name}, x.shape, layer.name());
}

// exact:               y = ½·x·(1 + erf(x/√2))
// tanh approximation:  y = ½·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
Value export_gelu(GraphBuilder& graph, const LayerToExport& layer, const Value& x) {
  const auto step = [&](const char* op, const std::string& a, const std::string& b,
                        const char* name) {
    return graph.node(op, b.empty() ? std::vector<std::string>{a} : std::vector<std::string>{a, b},
                      x.shape, layer.name(name)).name;
  };
  std::string cdf;  // 1 + erf(x/√2), or 1 + tanh(...)
  if (layer.as<GELU>().tanh_approximation()) {
    const std::string cube = step("Mul", x.name, step("Mul", x.name, x.name, "square"), "cube");
    const std::string inner = step("Add", x.name, step("Mul", cube, graph.scalar(0.044715), "cubic_term"), "inner");
    const std::string scaled = step("Mul", inner, graph.scalar(std::sqrt(2.0 / M_PI)), "scaled");
    cdf = step("Add", step("Tanh", scaled, {}, "tanh"), graph.scalar(1.0), "one_plus_tanh");
  } else {
    const std::string scaled = step("Mul", x.name, graph.scalar(1.0 / std::sqrt(2.0)), "scaled");
    cdf = step("Add", step("Erf", scaled, {}, "erf"), graph.scalar(1.0), "one_plus_erf");
  }
  const std::string half_x = step("Mul", x.name, graph.scalar(0.5), "half_x");
  return graph.node("Mul", {half_x, cdf}, x.shape, layer.name());
}

}  // namespace layercache::onnx_export
