// Graph running: nodes run in an order that respects what each reads; backward runs them in
// reverse, summing the gradients of values read more than once and of layers used more than
// once. The spec is checked and compiled in graph_spec.cpp.
#include "layercache/layers/graph.hpp"

#include <algorithm>
#include <utility>

namespace layercache {
namespace {

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
