// ONNX export of a merge (Parallel's and a Graph node's): Concat along the first per-sample
// dimension, or a chain of Add, Mul or Sub.
#include "exporters.hpp"

namespace layercache::onnx_export {

Value export_merge(GraphBuilder& graph, Merge merge, const std::vector<Value>& inputs,
                   const std::string& name) {
  if (inputs.size() == 1) return inputs[0];
  std::vector<Shape> shapes;
  std::vector<std::string> names;
  for (const Value& v : inputs) {
    shapes.push_back(v.shape);
    names.push_back(v.name);
  }
  const Shape shape = merged_shape(merge, shapes, names);
  if (merge == Merge::concat)  // (batch, d₁, ...): layercache stacks the first dimension
    return graph.node("Concat", names, shape, name, {{"axis", std::int64_t(1)}});
  const char* op = merge == Merge::add ? "Add" : merge == Merge::multiply ? "Mul" : "Sub";
  Value y = inputs[0];
  for (std::size_t i = 1; i < inputs.size(); ++i)
    y = graph.node(op, {y.name, inputs[i].name}, shape,
                   i + 1 == inputs.size() ? name : name + "/" + std::to_string(i));
  return y;
}

}  // namespace layercache::onnx_export
