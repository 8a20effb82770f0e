// ONNX export of Graph (the layer; graph.cpp builds the ONNX graph itself): its inputs sliced
// out of the one input tensor, its nodes in run order, a shared node's weights stored once,
// its outputs joined into one tensor.
#include <map>

#include "exporters.hpp"
#include "layercache/layers/graph.hpp"

namespace layercache::onnx_export {
namespace {

// The graph inputs as values. With several, a sample holds them one after another in
// layercache's memory order: read flat, sliced, and each read with its own shape.
void export_inputs(GraphBuilder& graph, const LayerToExport& layer, const Value& x,
                   std::map<std::string, Value>& values) {
  const std::vector<GraphInput>& inputs = layer.as<Graph>().spec().inputs;
  if (inputs.size() == 1) {
    values.emplace(inputs[0].name, x);
    return;
  }
  const Value flat = reshape(graph, x, Shape{x.shape.size()}, layer.name("inputs"));
  const std::string axes = graph.int64s(layer.name("inputs/axes"), {1});
  std::int64_t offset = 0;
  for (const GraphInput& input : inputs) {
    const auto size = std::int64_t(input.shape.size());
    const std::string name = layer.name(input.name);
    const Value slice =
        graph.node("Slice",
                   {flat.name, graph.int64s(name + "/starts", {offset}),
                    graph.int64s(name + "/ends", {offset + size}), axes},
                   Shape{input.shape.size()}, name + "/slice");
    values.emplace(input.name, reshape(graph, slice, input.shape, name));
    offset += size;
  }
}

}  // namespace

Value export_graph(GraphBuilder& graph, const LayerToExport& layer, const Value& x) {
  const Graph& dag = layer.as<Graph>();
  std::map<std::string, Value> values;
  export_inputs(graph, layer, x, values);
  std::map<std::string, Part> owners;  // the nodes with a layer of their own, by name
  for (const Part& part : dag.parts(x.shape)) owners.emplace(part.name, part);
  std::map<std::string, const GraphNode*> nodes;
  for (const GraphNode& node : dag.spec().nodes) nodes.emplace(node.name, &node);

  for (const auto& [name, shape] : dag.value_shapes(x.shape)) {  // inputs, then run order
    const auto found = nodes.find(name);
    if (found == nodes.end()) continue;  // an input
    const GraphNode& node = *found->second;
    std::vector<Value> inputs;
    for (const std::string& source : node.inputs) inputs.push_back(values.at(source));
    const bool applies = node.layer || !node.shares.empty();
    Value y = export_merge(graph, node.merge, inputs, layer.name(node.name + (applies ? "/merge" : "")));
    if (node.layer) {
      y = export_part(graph, layer, owners.at(node.name), y);
    } else if (!node.shares.empty()) {
      // The owner's layer with the owner's params and state, at this node's path; its
      // constants are the owner's, not copies.
      const std::string path = join_path(layer.path, node.name);
      static const Tree<double> no_state;
      const Tree<double>* state = layer.state.find(node.shares);
      graph.share_constants(path, join_path(layer.path, node.shares));
      y = export_layer(graph, *owners.at(node.shares).layer, layer.params.at(node.shares),
                       state ? *state : no_state, y, path);
      graph.share_constants("", "");
    }
    values.insert_or_assign(node.name, y);
  }

  const std::vector<std::string>& outputs = dag.spec().outputs;
  if (outputs.size() == 1) return values.at(outputs[0]);
  std::vector<Value> flat;  // each output's values in layercache's order, one after another
  for (const std::string& output : outputs) {
    const Value& v = values.at(output);
    flat.push_back(reshape(graph, v, Shape{v.shape.size()}, layer.name(output + "/flatten")));
  }
  return export_merge(graph, Merge::concat, flat, layer.name());
}

}  // namespace layercache::onnx_export
