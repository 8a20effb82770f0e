// Sequential networks: forward in order, backward in reverse, on the combinator machinery.
#include "layercache/network.hpp"

#include <algorithm>
#include <string>
#include <vector>

namespace layercache {

Network::Network(std::initializer_list<AnyLayer> layers) : Network(std::vector<AnyLayer>(layers)) {}

Network::Network(std::vector<AnyLayer> layers) {
  if (layers.empty()) throw ConfigError("a network needs at least one layer");
  children_ = name_children(layers);
}

Shape Network::output_shape(const Shape& input) const {
  Shape s = input;
  for (const auto& c : children_) {
    try {
      s = c.layer->output_shape(s);
    } catch (Error& e) {
      e.prepend_path(c.name);
      throw;
    }
  }
  return s;
}

std::vector<Part> Network::parts(const Shape& input) const {
  std::vector<Part> out;
  Shape s = input;
  for (const auto& c : children_) {
    out.push_back(Part{c.name, c.layer.get(), s});
    s = c.layer->declaration(s)->output;  // checked by output_shape already
  }
  return out;
}

std::string Network::summary(const Shape& input, const SummaryOptions& options) const {
  return layercache::summary<float>(*this, input, options);
}

template <class T>
void Network::forward_t(const Tree<T>& params, const Tree<T>& state, const ConstBuffer<T>& x,
                        const LayerCall<T>& call, ChildrenCache<T>& cache,
                        ForwardResult<T>& out) const {
  const std::size_t n = children_.size();
  cache.prepare(children_);
  ConstBuffer<T> current = x;
  Shape shape = call.input();
  for (std::size_t i = 0; i < n; ++i) {
    const Child& c = children_[i];
    forward_child(c, child_node(params, c.name), child_node(state, c.name), current, shape,
                  call.context(), cache.steps[i]);
    current = cache.steps[i].output;
    shape = cache.steps[i].shape;
  }
  out.output = current;  // the last child's output, not copied
  gather_state(children_, cache.steps, out.state);
}

template <class T>
void Network::backward_t(const Tree<T>& params, const ChildrenCache<T>& cache,
                         const arma::Mat<T>& dy, const Needs& needs,
                         BackwardResult<T>& out) const {
  const std::size_t n = children_.size();
  if (cache.steps.size() != n)
    throw CacheError("a network of " + std::to_string(n) +
                     " layers was handed the cache of a network of " +
                     std::to_string(cache.steps.size()));
  out.parts.resize(n);
  // Unless the caller wants dx, the layers before the first one with a gradient to compute
  // (frozen or without params) need nothing: they run no backward, and that one computes no dx.
  std::size_t first = 0;
  if (!needs.input)
    while (first < n &&
           !wants_grads(child_node(params, children_[first].name),
                        needs.frozen ? needs.frozen->child(children_[first].name) : nullptr))
      ++first;
  const arma::Mat<T>* d = &dy;
  for (std::size_t i = n; i-- > first;) {
    const Child& c = children_[i];
    if (!cache.steps[i].cache) throw CacheError("the cache holds no entry for this layer", c.name);
    Tree<T>* grads = out.grads.find(c.name);
    backward_child(c, child_node(params, c.name), *cache.steps[i].cache, *d,
                   needs.child(c.name, i > first || needs.input), *grads, out.parts[i]);
    notify_grads_final(needs, *grads);
    d = &out.parts[i].dx;
  }
  // The first child's dx is the network's: handed over without a copy.
  if (needs.input) out.dx.swap(out.parts[0].dx);
}

template <class T>
void Network::infer_t(const Tree<T>& params, const Tree<T>& state, const arma::Mat<T>& x,
                      const LayerCall<T>& call, arma::Mat<T>& y) const {
  const std::size_t n = children_.size();
  arma::Mat<T> buffers[2];
  const arma::Mat<T>* current = &x;
  Shape shape = call.input();
  for (std::size_t i = 0; i < n; ++i) {
    arma::Mat<T>& target = i + 1 == n ? y : buffers[i % 2];
    const Child& c = children_[i];
    infer_child(c, child_node(params, c.name), child_node(state, c.name), *current, shape, target);
    shape = children_[i].layer->declaration(shape)->output;
    current = &target;
  }
}

template class LayerImpl<Network, ChildrenCache>;

}  // namespace layercache
