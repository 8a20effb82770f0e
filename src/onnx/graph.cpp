// The ONNX graph under construction (see graph.hpp); the one file that builds protobuf
// messages, with the ONNX classes of Debian's libonnx-dev.
#include "graph.hpp"

#include <onnx/onnx_pb.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <map>
#include <set>

#include "layercache/errors.hpp"
#include "layercache/onnx.hpp"

namespace layercache::onnx_export {
namespace {

static_assert(std::endian::native == std::endian::little,
              "ONNX raw_data is little-endian: the tensors are copied as they lie in memory");

// Sets a tensor's bytes from values of type V.
template <class V, class From>
void set_raw(onnx::TensorProto& tensor, const std::vector<From>& values) {
  std::string bytes(values.size() * sizeof(V), '\0');
  for (std::size_t i = 0; i < values.size(); ++i) {
    const V v = static_cast<V>(values[i]);
    std::memcpy(bytes.data() + i * sizeof(V), &v, sizeof(V));
  }
  tensor.set_raw_data(std::move(bytes));
}

// The type of a graph input or output: the element type and (batch, onnx_dims(shape)).
void set_type(onnx::ValueInfoProto& info, const std::string& name, int element,
              const Shape& shape, const std::string& batch_name) {
  info.set_name(name);
  auto* tensor = info.mutable_type()->mutable_tensor_type();
  tensor->set_elem_type(element);
  auto* dims = tensor->mutable_shape();
  dims->add_dim()->set_dim_param(batch_name);
  for (const std::int64_t d : onnx_dims(shape)) dims->add_dim()->set_dim_value(d);
}

void set_attribute(onnx::NodeProto& node, const Attribute& attribute) {
  auto* a = node.add_attribute();
  a->set_name(attribute.name);
  if (const auto* i = std::get_if<std::int64_t>(&attribute.value)) {
    a->set_type(onnx::AttributeProto_AttributeType_INT);
    a->set_i(*i);
  } else if (const auto* f = std::get_if<double>(&attribute.value)) {
    a->set_type(onnx::AttributeProto_AttributeType_FLOAT);
    a->set_f(static_cast<float>(*f));
  } else {
    a->set_type(onnx::AttributeProto_AttributeType_INTS);
    for (const std::int64_t v : std::get<std::vector<std::int64_t>>(attribute.value)) a->add_ints(v);
  }
}

}  // namespace

std::vector<std::int64_t> onnx_dims(const Shape& shape) {
  std::vector<std::int64_t> dims;
  for (std::size_t i = 0; i < shape.rank(); ++i) dims.push_back(std::int64_t(shape[i]));
  return dims;
}

struct GraphBuilder::Model {
  onnx::ModelProto proto;
  int element = onnx::TensorProto_DataType_FLOAT;
  Value input;
  std::string output_name;
  std::string batch_name;
  std::set<std::string> names;          // every tensor and node name in use
  std::map<double, std::string> scalars;  // scalar constants by value
  std::map<std::string, int> constants;   // the initializer made for each asked-for name
  std::string shared_path, shared_owner;  // see share_constants
};

GraphBuilder::GraphBuilder(Element element, const Shape& input_shape,
                           const std::string& input_name, const std::string& output_name,
                           const std::string& batch_name)
    : model_(std::make_unique<Model>()) {
  model_->output_name = output_name;
  model_->names.insert(output_name);  // taken by finish() alone
  model_->element = element == Element::float32 ? onnx::TensorProto_DataType_FLOAT
                                                : onnx::TensorProto_DataType_DOUBLE;
  model_->batch_name = batch_name;
  model_->input = Value{unique(input_name), input_shape};
  set_type(*model_->proto.mutable_graph()->add_input(), model_->input.name, model_->element,
           input_shape, batch_name);
}

GraphBuilder::~GraphBuilder() = default;

const Value& GraphBuilder::input() const noexcept { return model_->input; }

std::string GraphBuilder::unique(const std::string& name) {
  std::string candidate = name;
  for (int n = 2; !model_->names.insert(candidate).second; ++n)
    candidate = name + "_" + std::to_string(n);
  return candidate;
}

Value GraphBuilder::node(const std::string& op, const std::vector<std::string>& inputs,
                         const Shape& shape, const std::string& name,
                         const std::vector<Attribute>& attributes) {
  onnx::NodeProto& node = *model_->proto.mutable_graph()->add_node();
  const std::string output = unique(name);
  node.set_op_type(op);
  node.set_name(output);
  for (const auto& input : inputs) node.add_input(input);
  node.add_output(output);
  for (const auto& attribute : attributes) set_attribute(node, attribute);
  return Value{output, shape};
}

void GraphBuilder::share_constants(const std::string& path, const std::string& owner) {
  model_->shared_path = path;
  model_->shared_owner = owner;
}

std::string GraphBuilder::constant(const std::string& name, const std::vector<std::int64_t>& dims,
                                   const std::vector<double>& values) {
  onnx::GraphProto& graph = *model_->proto.mutable_graph();
  onnx::TensorProto tensor;
  tensor.set_data_type(model_->element);
  for (const std::int64_t d : dims) tensor.add_dims(d);
  if (model_->element == onnx::TensorProto_DataType_FLOAT)
    set_raw<float>(tensor, values);
  else
    set_raw<double>(tensor, values);
  const std::string& prefix = model_->shared_path;
  if (!prefix.empty() && name.size() > prefix.size() && name.compare(0, prefix.size(), prefix) == 0 &&
      name[prefix.size()] == '/') {
    const auto owned = model_->constants.find(model_->shared_owner + name.substr(prefix.size()));
    if (owned != model_->constants.end()) {
      const onnx::TensorProto& same = graph.initializer(owned->second);
      if (same.raw_data() == tensor.raw_data() &&
          std::equal(same.dims().begin(), same.dims().end(), tensor.dims().begin(), tensor.dims().end()))
        return same.name();
    }
  }
  tensor.set_name(unique(name));
  model_->constants.emplace(name, graph.initializer_size());
  *graph.add_initializer() = std::move(tensor);
  return graph.initializer(graph.initializer_size() - 1).name();
}

std::string GraphBuilder::scalar(double value) {
  auto found = model_->scalars.find(value);
  if (found != model_->scalars.end()) return found->second;
  const std::string name = constant("constant", {}, {value});
  model_->scalars.emplace(value, name);
  return name;
}

std::string GraphBuilder::int64s(const std::string& name, const std::vector<std::int64_t>& values) {
  onnx::TensorProto& tensor = *model_->proto.mutable_graph()->add_initializer();
  tensor.set_name(unique(name));
  tensor.set_data_type(onnx::TensorProto_DataType_INT64);
  tensor.add_dims(std::int64_t(values.size()));
  set_raw<std::int64_t>(tensor, values);
  return tensor.name();
}

std::string GraphBuilder::finish(const Value& output, const std::string& graph_name) {
  const std::string& output_name = model_->output_name;
  onnx::GraphProto& graph = *model_->proto.mutable_graph();
  graph.set_name(graph_name);
  // The node that makes `output` gets the output's name, which no other tensor has; a model
  // that changes nothing (an Identity) gets an Identity node to make it.
  const auto makes_output = [&](const onnx::NodeProto& node) { return node.output(0) == output.name; };
  auto producer = std::find_if(graph.mutable_node()->begin(), graph.mutable_node()->end(), makes_output);
  if (producer == graph.mutable_node()->end()) {
    node("Identity", {output.name}, output.shape, output_name + "_identity");
    producer = graph.mutable_node()->end() - 1;
  }
  const std::string old_name = producer->output(0);
  producer->set_output(0, output_name);
  for (auto& node : *graph.mutable_node())
    for (auto& input : *node.mutable_input())
      if (input == old_name) input = output_name;
  set_type(*graph.add_output(), output_name, model_->element, output.shape, model_->batch_name);

  onnx::ModelProto& model = model_->proto;
  model.set_ir_version(onnx::IR_VERSION);
  model.set_producer_name("layercache");
  model.set_producer_version(LAYERCACHE_VERSION);
  auto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(onnx_opset);
  std::string bytes;
  if (!model.SerializeToString(&bytes))
    throw ConfigError("the ONNX model cannot be serialized (over 2 GiB of weights?)");
  return bytes;
}

}  // namespace layercache::onnx_export
