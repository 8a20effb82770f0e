// Graph, checking and compiling its spec: names, the order nodes run in, what each reads and
// the shapes of every value for an input shape.
#include "layercache/layers/graph.hpp"

#include <algorithm>
#include <limits>
#include <utility>

namespace layercache {
namespace {

constexpr std::size_t none = std::numeric_limits<std::size_t>::max();

std::string listing(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

void check_name(const std::string& name, const char* what) {
  if (name.empty()) throw ConfigError(std::string("a graph ") + what + " needs a name");
  if (name.find('/') != std::string::npos)
    throw ConfigError(std::string("graph ") + what + " name '" + name + "' must not contain '/'");
}

}  // namespace

Graph::Graph(GraphSpec spec) : spec_(std::move(spec)) {
  const auto& inputs = spec_.inputs;
  const auto& nodes = spec_.nodes;
  if (inputs.empty()) throw ConfigError("a graph needs at least one input");
  if (nodes.empty()) throw ConfigError("a graph needs at least one node");
  if (spec_.outputs.empty()) throw ConfigError("a graph needs at least one output");
  // Names: inputs then nodes, all distinct.
  std::vector<std::string> names;
  for (const auto& in : inputs) {
    check_name(in.name, "input");
    if (in.shape.size() == 0)
      throw ConfigError("graph input '" + in.name + "' needs a shape with values, got " +
                        in.shape.str());
    names.push_back(in.name);
  }
  for (const auto& n : nodes) {
    check_name(n.name, "node");
    names.push_back(n.name);
  }
  for (std::size_t i = 0; i < names.size(); ++i)
    for (std::size_t j = i + 1; j < names.size(); ++j)
      if (names[i] == names[j]) throw ConfigError("the graph has two inputs or nodes named '" +
                                                  names[i] + "'");
  const auto index_of = [&](const std::string& name) {
    const auto it = std::find(names.begin(), names.end(), name);
    return it == names.end() ? none : std::size_t(it - names.begin());
  };
  const std::size_t n_in = inputs.size();
  // What each node reads (spec indices: inputs, then nodes), and the layers.
  std::vector<std::vector<std::size_t>> reads(nodes.size());
  for (std::size_t k = 0; k < nodes.size(); ++k) {
    const GraphNode& n = nodes[k];
    if (n.inputs.empty()) throw ConfigError("node reads nothing: give it inputs", n.name);
    for (const auto& in : n.inputs) {
      const std::size_t i = index_of(in);
      if (i == none)
        throw ConfigError("reads '" + in + "', which is neither an input nor a node (they are " +
                              listing(names) + ")",
                          n.name);
      reads[k].push_back(i);
    }
    if (n.layer && !n.shares.empty())
      throw ConfigError("has a layer and shares node '" + n.shares + "'s: give one of the two",
                        n.name);
    if (!n.shares.empty()) {
      const std::size_t o = index_of(n.shares);
      if (o == none || o < n_in)
        throw ConfigError("shares '" + n.shares + "', which is not a node", n.name);
      if (!nodes[o - n_in].layer)
        throw ConfigError("shares node '" + n.shares + "', which has no layer of its own",
                          n.name);
    }
  }
  // Run order: repeatedly the first node, in the order given, whose inputs are all ready.
  std::vector<std::size_t> value_of(n_in + nodes.size(), none);  // spec index -> value index
  for (std::size_t i = 0; i < n_in; ++i) value_of[i] = i;
  std::vector<std::size_t> order;
  std::vector<bool> placed(nodes.size(), false);
  while (order.size() < nodes.size()) {
    bool progress = false;
    for (std::size_t k = 0; k < nodes.size(); ++k) {
      if (placed[k]) continue;
      bool ready = true;
      for (const std::size_t i : reads[k]) ready = ready && value_of[i] != none;
      if (!ready) continue;
      placed[k] = true;
      value_of[n_in + k] = n_in + order.size();
      order.push_back(k);
      progress = true;
      break;
    }
    if (!progress) {
      std::vector<std::string> stuck;
      for (std::size_t k = 0; k < nodes.size(); ++k)
        if (!placed[k]) stuck.push_back(nodes[k].name);
      throw ConfigError("the graph has a cycle: nodes " + listing(stuck) +
                        " each wait, directly or not, for another of them");
    }
  }
  // Params entries: the nodes with a layer of their own, in the order given.
  std::vector<std::size_t> owner_of(nodes.size(), none);
  for (std::size_t k = 0; k < nodes.size(); ++k)
    if (nodes[k].layer) {
      owner_of[k] = owners_.size();
      owners_.push_back(Child{nodes[k].name, nodes[k].layer->shared()});
    }
  std::size_t shared_count = 0;
  for (const std::size_t k : order) {
    const GraphNode& n = nodes[k];
    Node node;
    node.name = n.name;
    node.merge = n.merge;
    for (const std::size_t i : reads[k]) node.sources.push_back(value_of[i]);
    if (n.layer) {
      node.owner = owner_of[k];
      node.step = node.owner;
      node.child = owners_[node.owner];
    } else if (!n.shares.empty()) {
      const std::size_t o = index_of(n.shares) - n_in;
      node.owner = owner_of[o];
      node.shared = true;
      node.step = shared_count++;
      node.child = Child{n.name, owners_[node.owner].layer};
    }
    nodes_.push_back(std::move(node));
  }
  for (const auto& name : spec_.outputs) {
    const std::size_t i = index_of(name);
    if (i == none || i < n_in)
      throw ConfigError("output '" + name + "' is not a node (the nodes are " +
                        listing(std::vector<std::string>(names.begin() + long(n_in), names.end())) +
                        ")");
    outputs_.push_back(value_of[i]);
  }
  // Every input is read and every node leads to an output (a node that did not would be run
  // for nothing, and its params would never learn).
  std::vector<bool> needed(n_in + nodes_.size(), false);
  for (const std::size_t v : outputs_) needed[v] = true;
  for (std::size_t k = nodes_.size(); k-- > 0;)
    if (needed[n_in + k])
      for (const std::size_t v : nodes_[k].sources) needed[v] = true;
  for (std::size_t i = 0; i < n_in; ++i)
    if (!needed[i])
      throw ConfigError("input '" + inputs[i].name + "' is not read on the way to an output");
  for (std::size_t k = 0; k < nodes_.size(); ++k)
    if (!needed[n_in + k]) throw ConfigError("node leads to no output", nodes_[k].name);
  // Backward adds into each value's gradient; the first contribution to reach it assigns.
  // Outputs get dy first; then nodes in reverse run order, their sources in order.
  std::vector<bool> seen(needed.size(), false);
  std::vector<std::size_t> fanout(needed.size(), 0);
  for (const std::size_t v : outputs_) {
    seen[v] = true;
    ++fanout[v];
  }
  for (std::size_t k = nodes_.size(); k-- > 0;) {
    Node& node = nodes_[k];
    node.assigns.assign(node.sources.size(), false);
    for (std::size_t s = 0; s < node.sources.size(); ++s) {
      node.assigns[s] = !seen[node.sources[s]];
      seen[node.sources[s]] = true;
      ++fanout[node.sources[s]];
    }
  }
  for (std::size_t k = 0; k < nodes_.size(); ++k) nodes_[k].fanout = fanout[n_in + k];
  input_offsets_.push_back(0);
  for (const auto& in : inputs) input_offsets_.push_back(input_offsets_.back() + in.shape.size());
}

std::string Graph::value_name(std::size_t v) const {
  const std::size_t n_in = spec_.inputs.size();
  return v < n_in ? spec_.inputs[v].name : nodes_[v - n_in].name;
}

void Graph::compute_shapes(const Shape& input, std::vector<Shape>& values,
                           std::vector<Shape>& node_inputs) const {
  const std::size_t n_in = spec_.inputs.size();
  values.assign(n_in + nodes_.size(), Shape{});
  node_inputs.assign(nodes_.size(), Shape{});
  if (n_in == 1) {
    if (!(input == spec_.inputs[0].shape))
      throw ShapeError("expected input " + spec_.inputs[0].shape.str() + " (the graph's input '" +
                       spec_.inputs[0].name + "'), got " + input.str());
  } else if (input.size() != input_offsets_.back()) {
    std::string each;
    for (const auto& in : spec_.inputs)
      each += (each.empty() ? "" : ", ") + in.name + " " + in.shape.str();
    throw ShapeError("expected input of " + std::to_string(input_offsets_.back()) +
                     " values per sample (the graph's inputs " + each +
                     ", one after another), got " + input.str());
  }
  for (std::size_t i = 0; i < n_in; ++i) values[i] = spec_.inputs[i].shape;
  // The tensors each layer with params needs, from its first use, to check the others.
  std::vector<std::shared_ptr<const Declaration>> first_use(owners_.size());
  for (std::size_t k = 0; k < nodes_.size(); ++k) {
    const Node& node = nodes_[k];
    try {
      Shape in = values[node.sources[0]];
      if (node.sources.size() > 1) {
        std::vector<Shape> shapes;
        std::vector<std::string> names;
        for (const std::size_t v : node.sources) {
          shapes.push_back(values[v]);
          names.push_back("'" + value_name(v) + "'");
        }
        in = merged_shape(node.merge, shapes, names);
      }
      node_inputs[k] = in;
      if (!node.child.layer) {
        values[n_in + k] = in;
        continue;
      }
      const auto d = node.child.layer->declaration(in);
      if (const auto& first = first_use[node.owner]) {
        // A node that shares another's layer must need the very same tensors.
        bool same = first->params.size() == d->params.size();
        for (std::size_t i = 0; same && i < d->params.size(); ++i)
          same = first->params[i].name == d->params[i].name &&
                 first->params[i].rows == d->params[i].rows &&
                 first->params[i].cols == d->params[i].cols;
        if (!same)
          throw ShapeError("uses the params of '" + owners_[node.owner].name + "', but its input " +
                           in.str() + " needs other tensors than " + first->input.str() + " does");
      } else {
        first_use[node.owner] = d;
      }
      values[n_in + k] = d->output;
    } catch (Error& e) {
      e.prepend_path(node.name);
      throw;
    }
  }
}

Shape Graph::output_shape(const Shape& input) const {
  std::vector<Shape> values, node_inputs;
  compute_shapes(input, values, node_inputs);
  if (outputs_.size() == 1) return values[outputs_[0]];
  std::size_t total = 0;
  for (const std::size_t v : outputs_) total += values[v].size();
  return Shape{total};
}

std::vector<Part> Graph::parts(const Shape& input) const {
  std::vector<Shape> values, node_inputs;
  compute_shapes(input, values, node_inputs);
  std::vector<Part> out(owners_.size());
  for (std::size_t k = 0; k < nodes_.size(); ++k)
    if (nodes_[k].child.layer && !nodes_[k].shared)
      out[nodes_[k].owner] = Part{nodes_[k].name, nodes_[k].child.layer.get(), node_inputs[k]};
  return out;
}

std::vector<std::pair<std::string, Shape>> Graph::value_shapes(const Shape& input) const {
  std::vector<Shape> values, node_inputs;
  compute_shapes(input, values, node_inputs);
  std::vector<std::pair<std::string, Shape>> out;
  for (std::size_t v = 0; v < values.size(); ++v) out.emplace_back(value_name(v), values[v]);
  return out;
}

}  // namespace layercache
