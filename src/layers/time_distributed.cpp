// TimeDistributed: the inner layer on the steps of a sequence, read in place.
#include "layercache/layers/time_distributed.hpp"

#include <utility>

namespace layercache {
namespace {

// A matrix of another shape over the memory of `owner` (kept alive by the view).
template <class T>
struct View {
  ConstBuffer<T> owner;
  arma::Mat<T> matrix;
  View(ConstBuffer<T> o, std::size_t rows, std::size_t cols)
      : owner(std::move(o)), matrix(const_cast<T*>(owner->memptr()), rows, cols, false, true) {}
};

// `view` made (or kept, when it already reads `owner`'s memory as rows × cols).
template <class T>
void view_as(const ConstBuffer<T>& owner, std::size_t rows, std::size_t cols, ConstBuffer<T>& view) {
  if (view && view->memptr() == owner->memptr() && view->n_rows == rows && view->n_cols == cols)
    return;
  auto v = std::make_shared<View<T>>(owner, rows, cols);
  view = ConstBuffer<T>(v, &v->matrix);
}

// A view on the stack (no allocation) of `m`'s memory as rows × cols.
template <class T>
arma::Mat<T> view_of(const arma::Mat<T>& m, std::size_t rows, std::size_t cols) {
  return arma::Mat<T>(const_cast<T*>(m.memptr()), rows, cols, false, true);
}

}  // namespace

TimeDistributed::TimeDistributed(AnyLayer inner) : children_(name_children({std::move(inner)})) {}

Shape TimeDistributed::output_shape(const Shape& input) const {
  if (input.rank() != 2)
    throw ShapeError("expected a sequence (T, F), got " + input.str());
  Shape step;
  try {
    step = children_[0].layer->declaration(Shape{input[1]})->output;
  } catch (Error& e) {
    e.prepend_path(children_[0].name);
    throw;
  }
  return Shape{input[0], step.size()};
}

std::vector<Part> TimeDistributed::parts(const Shape& input) const {
  return {Part{children_[0].name, children_[0].layer.get(), Shape{input[1]}}};
}

template <class T>
void TimeDistributed::forward_t(const Tree<T>& params, const Tree<T>& state,
                                const ConstBuffer<T>& x, const LayerCall<T>& call,
                                TimeDistributedCache<T>& cache, ForwardResult<T>& out) const {
  const std::size_t steps = call.input()[0], n_in = call.input()[1], batch = x->n_cols;
  const std::size_t n_out = call.output()[1];
  cache.prepare(children_);
  view_as(x, n_in, steps * batch, cache.step_view);
  const Child& c = children_[0];
  forward_child(c, child_node(params, c.name), child_node(state, c.name), cache.step_view,
                Shape{n_in}, call.context(), cache.steps[0]);
  view_as(cache.steps[0].output, steps * n_out, batch, cache.output_view);
  out.output = cache.output_view;
  gather_state(children_, cache.steps, out.state);
}

template <class T>
void TimeDistributed::backward_t(const Tree<T>& params, const TimeDistributedCache<T>& cache,
                                 const arma::Mat<T>& dy, const Needs& needs,
                                 BackwardResult<T>& out) const {
  const std::size_t n_out = cache.output_shape()[1], steps = cache.input_shape()[0];
  const std::size_t n_in = cache.input_shape()[1], batch = dy.n_cols;
  out.parts.resize(1);
  const Child& c = children_[0];
  const arma::Mat<T> dy_steps = view_of(dy, n_out, steps * batch);
  backward_child(c, child_node(params, c.name), *cache.steps[0].cache, dy_steps,
                 needs.child(c.name, needs.input), *out.grads.find(c.name), out.parts[0]);
  if (!needs.input) return;
  // The inner dx (F × T·batch) is the sequence's dx read in place: handed over, reshaped.
  out.dx.swap(out.parts[0].dx);
  out.dx.set_size(steps * n_in, batch);
}

template <class T>
void TimeDistributed::infer_t(const Tree<T>& params, const Tree<T>& state, const arma::Mat<T>& x,
                              const LayerCall<T>& call, arma::Mat<T>& y) const {
  const std::size_t steps = call.input()[0], n_in = call.input()[1], batch = x.n_cols;
  const Child& c = children_[0];
  infer_child(c, child_node(params, c.name), child_node(state, c.name),
              view_of(x, n_in, steps * batch), Shape{n_in}, y);
  y.set_size(steps * call.output()[1], batch);
}

template class LayerImpl<TimeDistributed, TimeDistributedCache>;

}  // namespace layercache
