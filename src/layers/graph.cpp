// Graph: nodes run in an order that respects what each reads; backward runs them in reverse,
// summing the gradients of values read more than once and of layers used more than once.
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

// Adds every leaf of `from` that is not empty to the same leaf of `into` (same structure).
template <class T>
void add_tree(const Tree<T>& from, Tree<T>& into) {
  if (from.is_leaf()) {
    if (!from.value().is_empty()) into.value() += from.value();
    return;
  }
  for (std::size_t i = 0; i < from.size(); ++i) add_tree(from.child(i), into.child(i));
}

// The rows of a sample, [first, first + rows), as a matrix of their own.
template <class T>
void copy_rows(const arma::Mat<T>& x, std::size_t first, std::size_t rows, arma::Mat<T>& into) {
  into.set_size(rows, x.n_cols);
  for (std::size_t j = 0; j < x.n_cols; ++j)
    std::copy(x.colptr(j) + first, x.colptr(j) + first + rows, into.colptr(j));
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

template <class T>
void GraphCache<T>::for_each_buffer(const BufferVisitor& f) const {
  for (const auto& s : steps)
    if (s.cache) s.cache->for_each_buffer(f);
  for (const auto& s : shared_steps)
    if (s.cache) s.cache->for_each_buffer(f);
  for (const auto& m : merged)
    if (m) visit_buffer(*m, f);
  for (const auto& m : slices)
    if (m) visit_buffer(*m, f);
}

template <class T>
void GraphCache<T>::for_each_child(
    const std::function<void(const std::string&, const Cache&)>& f) const {
  for (std::size_t i = 0; i < steps.size() + shared_steps.size() && i < names.size(); ++i) {
    const auto& s = i < steps.size() ? steps[i] : shared_steps[i - steps.size()];
    if (s.cache) f(names[i], *s.cache);
  }
}

namespace {

// Pointers to the values `sources` (allocates nothing once `into` has room).
template <class V, class T>
void gather(const std::vector<std::size_t>& sources, const std::vector<V>& values,
            std::vector<const arma::Mat<T>*>& into) {
  into.clear();
  for (const std::size_t v : sources) into.push_back(&*values[v]);
}

// The merge of `inputs` into `into`, sized for it.
template <class T>
void merge_values(Merge merge, const std::vector<const arma::Mat<T>*>& inputs,
                  arma::Mat<T>& into) {
  std::size_t rows = inputs[0]->n_rows;
  if (merge == Merge::concat)
    for (std::size_t i = 1; i < inputs.size(); ++i) rows += inputs[i]->n_rows;
  into.set_size(rows, inputs[0]->n_cols);
  detail::merge_into(merge, inputs, into);
}

}  // namespace

template <class T>
void Graph::forward_t(const Tree<T>& params, const Tree<T>& state, const ConstBuffer<T>& x,
                      const LayerCall<T>& call, GraphCache<T>& cache,
                      ForwardResult<T>& out) const {
  const std::size_t n_in = spec_.inputs.size();
  std::size_t shared_count = 0;
  for (const auto& node : nodes_) shared_count += node.shared;
  cache.steps.resize(owners_.size());
  cache.shared_steps.resize(shared_count);
  cache.merged.resize(nodes_.size());
  cache.values.resize(n_in + nodes_.size());
  if (cache.names.size() != owners_.size() + shared_count) {
    cache.names.clear();
    for (const auto& o : owners_) cache.names.push_back(o.name);
    for (const auto& node : nodes_)
      if (node.shared) cache.names.push_back(node.name);
  }
  if (cache.shapes.empty() || !(cache.shapes_for == call.input())) {
    compute_shapes(call.input(), cache.shapes, cache.node_inputs);
    cache.shapes_for = call.input();
  }
  // The inputs: x itself, or each input's rows of it.
  if (n_in == 1) {
    cache.values[0] = x;
  } else {
    cache.slices.resize(n_in);
    for (std::size_t i = 0; i < n_in; ++i) {
      if (!cache.slices[i]) cache.slices[i] = std::make_shared<arma::Mat<T>>();
      copy_rows(*x, input_offsets_[i], input_offsets_[i + 1] - input_offsets_[i],
                *cache.slices[i]);
      cache.values[i] = cache.slices[i];
    }
  }
  thread_local std::vector<const arma::Mat<T>*> inputs;
  for (std::size_t k = 0; k < nodes_.size(); ++k) {
    const Node& node = nodes_[k];
    ConstBuffer<T> in = cache.values[node.sources[0]];
    if (node.sources.size() > 1) {
      Buffer<T>& merged = cache.merged[k];
      if (!merged) merged = std::make_shared<arma::Mat<T>>();
      gather(node.sources, cache.values, inputs);
      merge_values(node.merge, inputs, *merged);
      in = merged;
    }
    if (!node.child.layer) {
      cache.values[n_in + k] = in;
      continue;
    }
    ForwardResult<T>& step = node.shared ? cache.shared_steps[node.step] : cache.steps[node.step];
    const std::string& owner = owners_[node.owner].name;
    forward_child(node.child, child_node(params, owner), child_node(state, owner), in,
                  cache.node_inputs[k], call.context(), step);
    cache.values[n_in + k] = step.output;
  }
  if (outputs_.size() == 1) {
    out.output = cache.values[outputs_[0]];  // the output node's, not copied
  } else {
    gather(outputs_, cache.values, inputs);
    detail::merge_into(Merge::concat, inputs, out.write_output(call.output().size(), x->n_cols));
  }
  // The state a layer returns is its own use's; a layer with state used twice keeps that of
  // the node that owns it.
  gather_state(owners_, cache.steps, out.state);
}

template <class T>
void Graph::backward_t(const Tree<T>& params, const GraphCache<T>& cache,
                       const arma::Mat<T>& dy, const Needs& needs,
                       BackwardResult<T>& out) const {
  const std::size_t n_in = spec_.inputs.size(), n = nodes_.size();
  if (cache.values.size() != n_in + n || cache.steps.size() != owners_.size())
    throw CacheError("expected the cache of this graph (" + std::to_string(n) +
                     " nodes), got one of another graph");
  out.parts.resize(owners_.size() + cache.shared_steps.size());
  out.buffers.resize(n);
  // Which values a gradient must reach: the inputs when the caller wants dx, and a node's
  // output when its layer has a gradient to compute or it reads such a value.
  thread_local std::vector<unsigned char> wants;
  thread_local std::vector<const arma::Mat<T>*> grad;  // each value's gradient, once complete
  thread_local std::vector<const arma::Mat<T>*> inputs;
  wants.assign(n_in + n, needs.input);
  grad.assign(n_in + n, nullptr);
  for (std::size_t k = 0; k < n; ++k) {
    const Node& node = nodes_[k];
    bool w = false;
    for (const std::size_t v : node.sources) w = w || wants[v];
    if (node.child.layer) {
      const std::string& owner = owners_[node.owner].name;
      w = w || wants_grads(child_node(params, owner),
                           needs.frozen ? needs.frozen->child(owner) : nullptr);
    }
    wants[n_in + k] = w;
  }
  // Adds (or, for the first contribution, writes) g into the gradient of value v.
  const auto contribute = [&](std::size_t v, const arma::Mat<T>& g, bool assign,
                              bool lone_and_kept) {
    if (v < n_in) {
      if (!needs.input) return;
      if (n_in == 1) {
        if (assign)
          out.dx = g;
        else
          out.dx += g;
        return;
      }
      const std::size_t first = input_offsets_[v], last = input_offsets_[v + 1] - 1;
      if (assign) {
        out.dx.set_size(input_offsets_.back(), dy.n_cols);
        out.dx.rows(first, last) = g;
      } else {
        out.dx.rows(first, last) += g;
      }
      return;
    }
    arma::Mat<T>& sum = out.buffers[v - n_in];
    if (lone_and_kept) {
      grad[v] = &g;  // the only contribution, in a buffer that stays put: no copy
    } else if (assign) {
      sum = g;
      grad[v] = &sum;
    } else {
      sum += g;
    }
  };
  // The gradients reaching the outputs: dy, or each output's rows of it.
  if (outputs_.size() == 1) {
    const std::size_t v = outputs_[0];
    if (nodes_[v - n_in].fanout == 1)
      grad[v] = &dy;
    else
      contribute(v, dy, true, false);
  } else {
    std::size_t row = 0;
    for (const std::size_t v : outputs_) {
      const std::size_t rows = cache.values[v]->n_rows;
      arma::Mat<T>& sum = out.buffers[v - n_in];
      copy_rows(dy, row, rows, sum);
      grad[v] = &sum;
      row += rows;
    }
  }
  std::size_t shared_seen = 0;
  for (std::size_t k = n; k-- > 0;) {
    const Node& node = nodes_[k];
    if (!wants[n_in + k]) continue;
    const arma::Mat<T>& g = *grad[n_in + k];
    bool want_dx = false;
    for (const std::size_t v : node.sources) want_dx = want_dx || wants[v];
    const arma::Mat<T>* d = &g;
    if (node.child.layer) {
      const std::string& owner = owners_[node.owner].name;
      BackwardResult<T>& part =
          out.parts[node.shared ? owners_.size() + node.step : node.step];
      const ForwardResult<T>& step =
          node.shared ? cache.shared_steps[node.step] : cache.steps[node.step];
      // A node that owns its layer writes straight into the graph's grads; a node that shares
      // one writes into its own, added below.
      Tree<T>& target = node.shared ? part.grads : *out.grads.find(owner);
      backward_child(node.child, child_node(params, owner), *step.cache, g,
                     needs.child(owner, want_dx), target, part);
      d = &part.dx;
      shared_seen += node.shared;
    }
    if (!want_dx) continue;
    if (node.sources.size() == 1) {
      contribute(node.sources[0], *d, node.assigns[0],
                 node.child.layer && node.assigns[0] &&
                     (node.sources[0] < n_in ? false : nodes_[node.sources[0] - n_in].fanout == 1));
      continue;
    }
    gather(node.sources, cache.values, inputs);
    for (std::size_t s = 0; s < node.sources.size(); ++s) {
      if (!wants[node.sources[s]]) continue;
      const arma::Mat<T>& gs = detail::merge_gradient(node.merge, inputs, s, *d, out.workspace);
      contribute(node.sources[s], gs, node.assigns[s], false);
    }
  }
  // The gradients of a layer used by several nodes: every use's, summed into its params'.
  for (std::size_t k = 0; k < n; ++k) {
    const Node& node = nodes_[k];
    if (!node.shared || !wants[n_in + k]) continue;
    add_tree(out.parts[owners_.size() + node.step].grads, *out.grads.find(owners_[node.owner].name));
  }
  (void)shared_seen;
}

template <class T>
void Graph::infer_t(const Tree<T>& params, const Tree<T>& state, const arma::Mat<T>& x,
                    const LayerCall<T>& call, arma::Mat<T>& y) const {
  const std::size_t n_in = spec_.inputs.size();
  std::vector<Shape> shapes, node_inputs;
  compute_shapes(call.input(), shapes, node_inputs);
  std::vector<arma::Mat<T>> held(n_in + nodes_.size());  // slices, merges and node outputs
  std::vector<const arma::Mat<T>*> values(n_in + nodes_.size(), nullptr);
  if (n_in == 1) {
    values[0] = &x;
  } else {
    for (std::size_t i = 0; i < n_in; ++i) {
      copy_rows(x, input_offsets_[i], input_offsets_[i + 1] - input_offsets_[i], held[i]);
      values[i] = &held[i];
    }
  }
  std::vector<const arma::Mat<T>*> inputs;
  for (std::size_t k = 0; k < nodes_.size(); ++k) {
    const Node& node = nodes_[k];
    const arma::Mat<T>* in = values[node.sources[0]];
    arma::Mat<T> merged;
    if (node.sources.size() > 1) {
      gather(node.sources, values, inputs);
      merge_values(node.merge, inputs, merged);
      in = &merged;
    }
    arma::Mat<T>& target = held[n_in + k];
    if (!node.child.layer) {
      target = *in;
    } else {
      const std::string& owner = owners_[node.owner].name;
      infer_child(node.child, child_node(params, owner), child_node(state, owner), *in,
                  node_inputs[k], target);
    }
    values[n_in + k] = &target;
  }
  if (outputs_.size() == 1) {
    y = *values[outputs_[0]];
    return;
  }
  gather(outputs_, values, inputs);
  y.set_size(call.output().size(), x.n_cols);
  detail::merge_into(Merge::concat, inputs, y);
}

template struct GraphCache<float>;
template struct GraphCache<double>;
template class LayerImpl<Graph, GraphCache>;

}  // namespace layercache
