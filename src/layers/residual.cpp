// Residual: y = skip + f(x), forward and backward side by side on the combinator machinery.
#include "layercache/layers/residual.hpp"

#include <utility>

namespace layercache {
namespace {

std::vector<Child> role_named(std::vector<AnyLayer> layers) {
  const char* roles[] = {"inner", "projection"};
  for (std::size_t i = 0; i < layers.size(); ++i)
    if (layers[i].name().empty()) layers[i] = layers[i].named(roles[i]);
  return name_children(layers);
}

}  // namespace

Residual::Residual(AnyLayer inner) : children_(role_named({std::move(inner)})) {}

Residual::Residual(AnyLayer inner, AnyLayer projection)
    : children_(role_named({std::move(inner), std::move(projection)})) {}

Shape Residual::output_shape(const Shape& input) const {
  Shape shapes[2] = {input, input};
  for (std::size_t i = 0; i < children_.size(); ++i) {
    try {
      shapes[i] = children_[i].layer->declaration(input)->output;
    } catch (Error& e) {
      e.prepend_path(children_[i].name);
      throw;
    }
  }
  if (!(shapes[0] == shapes[1]))
    throw ShapeError("the inner path gives " + shapes[0].str() + " but the skip path " +
                     shapes[1].str() +
                     (children_.size() == 1
                          ? "; give the block a projection layer for the skip path"
                          : " (the projection's output)") +
                     "; they are added");
  return shapes[0];
}

std::vector<Part> Residual::parts(const Shape& input) const {
  std::vector<Part> out;
  for (const auto& c : children_) out.push_back(Part{c.name, c.layer.get(), input});
  return out;
}

template <class T>
void Residual::forward_t(const Tree<T>& params, const Tree<T>& state, const ConstBuffer<T>& x,
                         const LayerCall<T>& call, ChildrenCache<T>& cache,
                         ForwardResult<T>& out) const {
  cache.prepare(children_);
  for (std::size_t i = 0; i < children_.size(); ++i) {
    const Child& c = children_[i];
    forward_child(c, child_node(params, c.name), child_node(state, c.name), x, call.input(),
                  call.context(), cache.steps[i]);
  }
  const arma::Mat<T>& skip = children_.size() == 2 ? cache.steps[1].y() : *x;
  // One pass, no temporary: the sum is written straight into the output buffer.
  out.write_output(cache.steps[0].y().n_rows, x->n_cols) = cache.steps[0].y() + skip;
  gather_state(children_, cache.steps, out.state);
}

template <class T>
void Residual::backward_t(const Tree<T>& params, const ChildrenCache<T>& cache,
                          const arma::Mat<T>& dy, const Needs& needs,
                          BackwardResult<T>& out) const {
  out.parts.resize(children_.size());
  for (std::size_t i = 0; i < children_.size(); ++i) {
    const Child& c = children_[i];
    backward_child(c, child_node(params, c.name), *cache.steps[i].cache, dy,
                   needs.child(c.name, needs.input), *out.grads.find(c.name), out.parts[i]);
  }
  if (!needs.input) return;
  // dx = inner's dx + the skip path's: inner's buffer is handed over and added to in place.
  out.dx.swap(out.parts[0].dx);
  out.dx += children_.size() == 2 ? out.parts[1].dx : dy;
}

template <class T>
void Residual::infer_t(const Tree<T>& params, const Tree<T>& state, const arma::Mat<T>& x,
                       const LayerCall<T>& call, arma::Mat<T>& y) const {
  const auto run = [&](const Child& c, arma::Mat<T>& into) {
    infer_child(c, child_node(params, c.name), child_node(state, c.name), x, call.input(), into);
  };
  run(children_[0], y);
  if (children_.size() == 1) {
    y += x;
    return;
  }
  arma::Mat<T> skip;
  run(children_[1], skip);
  y += skip;
}

template class LayerImpl<Residual, ChildrenCache>;

}  // namespace layercache
