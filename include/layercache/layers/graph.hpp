// Graph: a directed acyclic graph of named nodes, the stateless form of Keras's functional API.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "layercache/combinator.hpp"
#include "layercache/layers/parallel.hpp"

namespace layercache {

/// One input of a Graph: its name and per-sample shape.
struct GraphInput {
  /// The name nodes read it by.
  std::string name;
  /// The shape of one sample of it.
  Shape shape;
};

/// One node of a Graph: a layer applied to what it reads (several inputs merged first), a
/// merge alone (no layer), or another node's layer applied again with the same params
/// (`shares`).
struct GraphNode {
  /// The node's name: its path segment in errors and, for a node with a layer of its own,
  /// its entry in the graph's params.
  std::string name;
  /// The layer the node applies; none for a merge alone or for a node that shares another
  /// node's layer.
  std::optional<AnyLayer> layer{};
  /// What the node reads: graph inputs or earlier nodes, by name; at least one. Several are
  /// merged by `merge` before the layer (if any) applies.
  std::vector<std::string> inputs{};
  /// How several inputs are merged (concat by default; see Merge).
  Merge merge = Merge::concat;
  /// The name of a node with a layer of its own whose layer and params this node applies too
  /// (weight sharing): the params are stored once, under that node's name, and the
  /// gradients of every use are summed into them.
  std::string shares{};
};

/// The description of a Graph: its inputs, its nodes (in any order; they are run in an order
/// that respects what each reads) and the nodes whose outputs are the graph's output.
struct GraphSpec {
  /// The inputs. A sample of the graph is one column holding each input's values one after
  /// another, in this order (a single input is simply the sample).
  std::vector<GraphInput> inputs;
  /// The nodes.
  std::vector<GraphNode> nodes;
  /// The output nodes. With several, a sample of the output holds each one's values one
  /// after another, in this order.
  std::vector<std::string> outputs;
};

/// What a Graph keeps for backward.
template <class T>
struct GraphCache : Cache {
  /// Per node with a layer of its own, in the order of the params: its forward result.
  std::vector<ForwardResult<T>> steps;
  /// Per node that shares another node's layer: its forward result.
  std::vector<ForwardResult<T>> shared_steps;
  /// Per node: its merged input when it reads several ((Σ rows or rows) × batch), else null.
  std::vector<Buffer<T>> merged;
  /// Per graph input when there are several: its rows of x (n_i × batch).
  std::vector<Buffer<T>> slices;
  /// Per value (the inputs, then every node in run order): its output, shared with the
  /// buffer that holds it (never copied).
  std::vector<ConstBuffer<T>> values;
  /// Per value: its per-sample shape, for the graph input shape `shapes_for`.
  std::vector<Shape> shapes;
  /// Per node: the per-sample shape its layer receives (its merged input's, or its source's).
  std::vector<Shape> node_inputs;
  /// The graph input shape `shapes` and `node_inputs` were computed for.
  Shape shapes_for;
  /// The node names of steps, then of shared_steps (for for_each_child).
  std::vector<std::string> names;

  /// The children's and the merges' buffers.
  void for_each_buffer(const BufferVisitor& f) const override;
  /// Every node's cache, by node name.
  void for_each_child(const std::function<void(const std::string&, const Cache&)>& f) const override;
};

/// A directed acyclic graph of layers:
///   Graph siamese({.inputs = {{"left", Shape{784}}, {"right", Shape{784}}},
///                  .nodes = {{.name = "embed_left", .layer = encoder, .inputs = {"left"}},
///                            {.name = "embed_right", .inputs = {"right"}, .shares = "embed_left"},
///                            {.name = "difference", .inputs = {"embed_left", "embed_right"},
///                             .merge = Merge::subtract},
///                            {.name = "head", .layer = Dense(32, 1), .inputs = {"difference"}}},
///                  .outputs = {"head"}});
/// A node reading several values merges them first; a value read by several nodes gets the
/// sum of their gradients. The params hold one entry per node with a layer of its own, in
/// the order the nodes are given. A cycle, a name that is neither an input nor a node, an
/// input no node reads, a node that leads to no output, or shapes a merge cannot join are
/// errors naming the nodes (ConfigError at construction, ShapeError for shapes).
class Graph : public CombinatorImpl<Graph, GraphCache> {
 public:
  /// The layer's kind.
  static constexpr const char* kind_name = "graph";
  /// A graph as described; throws ConfigError for a description that is not a DAG of
  /// known names from the inputs to the outputs.
  explicit Graph(GraphSpec spec);

  /// The output shape: the output node's, or the size of all outputs one after another.
  Shape output_shape(const Shape& input) const override;
  /// One part per node with a layer of its own, with the input shape it receives.
  std::vector<Part> parts(const Shape& input) const override;
  /// The description the graph was made from.
  const GraphSpec& spec() const noexcept { return spec_; }
  /// The per-sample shape of every input and node output for the graph input `input`, by
  /// name (inputs first, then nodes in run order).
  std::vector<std::pair<std::string, Shape>> value_shapes(const Shape& input) const;

  /// Runs the nodes in order (see CombinatorImpl).
  template <class T>
  void forward_t(const Tree<T>& params, const Tree<T>& state, const ConstBuffer<T>& x,
                 const LayerCall<T>& call, GraphCache<T>& cache, ForwardResult<T>& out) const;
  /// Runs the nodes backwards, summing the gradients of values read twice (see
  /// CombinatorImpl).
  template <class T>
  void backward_t(const Tree<T>& params, const GraphCache<T>& cache, const arma::Mat<T>& dy,
                  const Needs& needs, BackwardResult<T>& out) const;
  /// Runs the nodes in order (see CombinatorImpl).
  template <class T>
  void infer_t(const Tree<T>& params, const Tree<T>& state, const arma::Mat<T>& x,
               const LayerCall<T>& call, arma::Mat<T>& y) const;

 private:
  // A node as run: in run order, its sources as value indices (the inputs, then the nodes).
  struct Node {
    std::string name;
    Child child;                       // the layer it applies (own or shared); null for a merge
    std::size_t owner = 0;             // the entry of owners_ whose params it uses
    std::size_t step = 0;              // its index in steps (own layer) or shared_steps
    bool shared = false;               // it applies another node's layer and params
    std::vector<std::size_t> sources;  // the values it reads
    std::vector<bool> assigns;         // per source: its backward contribution comes first
    Merge merge = Merge::concat;
    std::size_t fanout = 0;            // contributions to its output's gradient in backward
  };
  // The shape of every value and the input shape of every node's layer, for `input`.
  void compute_shapes(const Shape& input, std::vector<Shape>& values,
                      std::vector<Shape>& node_inputs) const;
  // The name of value v: an input's or a node's.
  std::string value_name(std::size_t v) const;
  GraphSpec spec_;
  std::vector<Node> nodes_;          // in run order
  std::vector<Child> owners_;        // the nodes with a layer of their own, in spec order
  std::vector<std::size_t> outputs_; // value indices
  std::vector<std::size_t> input_offsets_;  // row of each input in a sample, and the total
};

extern template class LayerImpl<Graph, GraphCache>;

}  // namespace layercache
