// Layer exporters: one small function per layer kind, each in its own file of src/onnx/, found
// through the table in registry.cpp by the layer's concrete type (docs/onnx.md says how to add
// one).
//
// An exporter reads its layer's hyper-parameters through the layer's public accessors and its
// tensors from its own node of the params and state trees (the export has already checked
// them against the layer, as infer does), adds the nodes that compute the layer's inference
// output from `x`, and returns that output. A combinator exports each of its children
// (Layer::parts) with export_part, then joins their outputs; a residual block is
//   const std::vector<Part> parts = layer.layer.parts(x.shape);
//   const Value fx = export_part(graph, layer, parts[0], x);
//   return graph.node("Add", {x.name, fx.name}, x.shape, layer.name());
#pragma once

#include <string>

#include "graph.hpp"
#include "layercache/layer.hpp"
#include "layercache/layers/parallel.hpp"
#include "layercache/layers/window2d.hpp"

namespace layercache::onnx_export {

/// The layer being exported and everything it owns.
struct LayerToExport {
  const Layer& layer;         ///< the layer, of the concrete type the exporter was chosen for
  const Tree<double>& params; ///< its own params node (the values, converted to double)
  const Tree<double>& state;  ///< its own state node (empty for stateless layers)
  std::string path;           ///< its path in the model, e.g. "encoder/dense1"; names its nodes

  /// The layer as its concrete class L.
  template <class L>
  const L& as() const {
    return static_cast<const L&>(layer);
  }
  /// The layer's own tensor `name`, checked to be (rows × cols) (see layercache::param).
  const arma::mat& param(const std::string& name, std::size_t rows, std::size_t cols) const;
  /// The name of a node or constant of this layer: its path and `suffix` ("dense1/weight").
  std::string name(const std::string& suffix = {}) const;
};

/// The values of m in row-major order (ONNX's), for GraphBuilder::constant.
std::vector<double> row_major(const arma::mat& m);

/// The strides (height, width) of a window layer, for a Conv or pooling node.
std::vector<std::int64_t> window_strides(const WindowAxis& rows, const WindowAxis& cols);
/// The pads [top, left, bottom, right] of a window layer, for a Conv or pooling node.
std::vector<std::int64_t> window_pads(const WindowAxis& rows, const WindowAxis& cols);

/// Computes a layer's output from its input `x`.
using Exporter = Value (*)(GraphBuilder& graph, const LayerToExport& layer, const Value& x);

/// Exports `layer`, at `path` in the model ("" for the model itself), with its params and
/// state nodes, reading `x`. Throws ConfigError naming the path when no exporter knows the
/// layer's type.
Value export_layer(GraphBuilder& graph, const Layer& layer, const Tree<double>& params,
                   const Tree<double>& state, const Value& x, const std::string& path);
/// Exports the child `part` of the combinator `parent` (its params and state are the
/// parent's entries of the part's name), reading `x`.
Value export_part(GraphBuilder& graph, const LayerToExport& parent, const Part& part,
                  const Value& x);

/// The merge of `inputs` (Parallel's, a Graph node's): Concat along the first per-sample
/// dimension (features, or an image's channels), or a chain of Add, Mul or Sub; the one
/// input itself when there is one. `name` names the (last) node.
Value export_merge(GraphBuilder& graph, Merge merge, const std::vector<Value>& inputs,
                   const std::string& name);

// The exporters, each in the file of its name; registry.cpp maps layer types to them.
Value export_network(GraphBuilder&, const LayerToExport&, const Value&);
Value export_residual(GraphBuilder&, const LayerToExport&, const Value&);
Value export_parallel(GraphBuilder&, const LayerToExport&, const Value&);
Value export_graph(GraphBuilder&, const LayerToExport&, const Value&);
Value export_dense(GraphBuilder&, const LayerToExport&, const Value&);
Value export_conv2d(GraphBuilder&, const LayerToExport&, const Value&);
Value export_max_pool2d(GraphBuilder&, const LayerToExport&, const Value&);
Value export_avg_pool2d(GraphBuilder&, const LayerToExport&, const Value&);
Value export_global_avg_pool2d(GraphBuilder&, const LayerToExport&, const Value&);
Value export_relu(GraphBuilder&, const LayerToExport&, const Value&);
Value export_leaky_relu(GraphBuilder&, const LayerToExport&, const Value&);
Value export_elu(GraphBuilder&, const LayerToExport&, const Value&);
Value export_gelu(GraphBuilder&, const LayerToExport&, const Value&);
Value export_sigmoid(GraphBuilder&, const LayerToExport&, const Value&);
Value export_tanh(GraphBuilder&, const LayerToExport&, const Value&);
Value export_silu(GraphBuilder&, const LayerToExport&, const Value&);
Value export_softplus(GraphBuilder&, const LayerToExport&, const Value&);
Value export_selu(GraphBuilder&, const LayerToExport&, const Value&);
Value export_hardswish(GraphBuilder&, const LayerToExport&, const Value&);
Value export_mish(GraphBuilder&, const LayerToExport&, const Value&);
Value export_softmax(GraphBuilder&, const LayerToExport&, const Value&);
Value export_log_softmax(GraphBuilder&, const LayerToExport&, const Value&);
Value export_identity(GraphBuilder&, const LayerToExport&, const Value&);
Value export_flatten(GraphBuilder&, const LayerToExport&, const Value&);
Value export_reshape(GraphBuilder&, const LayerToExport&, const Value&);
Value export_batch_norm(GraphBuilder&, const LayerToExport&, const Value&);
Value export_layer_norm(GraphBuilder&, const LayerToExport&, const Value&);
Value export_dropout(GraphBuilder&, const LayerToExport&, const Value&);

}  // namespace layercache::onnx_export
