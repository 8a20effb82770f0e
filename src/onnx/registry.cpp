// Which exporter exports which layer: one row per layer class. Adding a layer kind to the
// exporter is a file src/onnx/<layer>.cpp with its function, its declaration in
// exporters.hpp, one row here and one row in tests/onnx's model table (docs/onnx.md).
#include <algorithm>
#include <typeindex>
#include <unordered_map>

#include "exporters.hpp"
#include "layercache/layers/activations.hpp"
#include "layercache/layers/avg_pool2d.hpp"
#include "layercache/layers/batch_norm.hpp"
#include "layercache/layers/conv2d.hpp"
#include "layercache/layers/dense.hpp"
#include "layercache/layers/dropout.hpp"
#include "layercache/layers/flatten.hpp"
#include "layercache/layers/graph.hpp"
#include "layercache/layers/identity.hpp"
#include "layercache/layers/layer_norm.hpp"
#include "layercache/layers/max_pool2d.hpp"
#include "layercache/layers/parallel.hpp"
#include "layercache/layers/reshape.hpp"
#include "layercache/layers/residual.hpp"
#include "layercache/layers/softmax.hpp"
#include "layercache/network.hpp"

namespace layercache::onnx_export {
namespace {

struct Entry {
  const char* kind;  // for the message that lists what is supported
  Exporter exporter;
};

const std::unordered_map<std::type_index, Entry>& exporters() {
  static const std::unordered_map<std::type_index, Entry> table{
      {typeid(Network), {"network", export_network}},
      {typeid(Residual), {"residual", export_residual}},
      {typeid(Parallel), {"parallel", export_parallel}},
      {typeid(Graph), {"graph", export_graph}},
      {typeid(Dense), {"dense", export_dense}},
      {typeid(Conv2D), {"conv2d", export_conv2d}},
      {typeid(MaxPool2D), {"max_pool2d", export_max_pool2d}},
      {typeid(AvgPool2D), {"avg_pool2d", export_avg_pool2d}},
      {typeid(GlobalAvgPool2D), {"global_avg_pool2d", export_global_avg_pool2d}},
      {typeid(ReLU), {"relu", export_relu}},
      {typeid(LeakyReLU), {"leaky_relu", export_leaky_relu}},
      {typeid(ELU), {"elu", export_elu}},
      {typeid(GELU), {"gelu", export_gelu}},
      {typeid(Sigmoid), {"sigmoid", export_sigmoid}},
      {typeid(Tanh), {"tanh", export_tanh}},
      {typeid(SiLU), {"silu", export_silu}},
      {typeid(Softplus), {"softplus", export_softplus}},
      {typeid(SELU), {"selu", export_selu}},
      {typeid(Hardswish), {"hardswish", export_hardswish}},
      {typeid(Mish), {"mish", export_mish}},
      {typeid(Softmax), {"softmax", export_softmax}},
      {typeid(LogSoftmax), {"log_softmax", export_log_softmax}},
      {typeid(Identity), {"identity", export_identity}},
      {typeid(Flatten), {"flatten", export_flatten}},
      {typeid(Reshape), {"reshape", export_reshape}},
      {typeid(BatchNorm), {"batch_norm", export_batch_norm}},
      {typeid(LayerNorm), {"layer_norm", export_layer_norm}},
      {typeid(Dropout), {"dropout", export_dropout}},
      {typeid(Dropout2D), {"dropout2d", export_dropout}},
  };
  return table;
}

std::string supported_kinds() {
  std::vector<std::string> kinds;
  for (const auto& [type, entry] : exporters()) kinds.emplace_back(entry.kind);
  std::sort(kinds.begin(), kinds.end());
  std::string list;
  for (const auto& kind : kinds) list += (list.empty() ? "" : ", ") + kind;
  return list;
}

}  // namespace

std::vector<double> row_major(const arma::mat& m) {
  const arma::mat t = m.t();  // its column-major memory is m's row-major order
  return std::vector<double>(t.begin(), t.end());
}

const arma::mat& LayerToExport::param(const std::string& name, std::size_t rows,
                                      std::size_t cols) const {
  return layercache::param(params, name, rows, cols);
}

std::string LayerToExport::name(const std::string& suffix) const {
  const std::string base = path.empty() ? layer.kind() : path;
  return suffix.empty() ? base : base + "/" + suffix;
}

Value export_layer(GraphBuilder& graph, const Layer& layer, const Tree<double>& params,
                   const Tree<double>& state, const Value& x, const std::string& path) {
  const auto found = exporters().find(std::type_index(typeid(layer)));
  if (found == exporters().end())
    throw ConfigError("cannot export a layer of kind '" + layer.kind() +
                          "' to ONNX: the exporter knows only the built-in layers (" +
                          supported_kinds() + ")",
                      path);
  return found->second.exporter(graph, LayerToExport{layer, params, state, path}, x);
}

Value export_part(GraphBuilder& graph, const LayerToExport& parent, const Part& part,
                  const Value& x) {
  static const Tree<double> no_state;
  const Tree<double>* state = parent.state.find(part.name);  // none when the state tree is empty
  return export_layer(graph, *part.layer, parent.params.at(part.name), state ? *state : no_state,
                      x, join_path(parent.path, part.name));
}

}  // namespace layercache::onnx_export
