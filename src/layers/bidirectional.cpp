// Bidirectional: both directions of a recurrent layer, forward and backward side by side.
#include "layercache/layers/bidirectional.hpp"

#include <algorithm>
#include <utility>

#include "layercache/layers/gru.hpp"
#include "layercache/layers/lstm.hpp"
#include "layercache/layers/simple_rnn.hpp"

#include "recurrent.hpp"

namespace layercache {
namespace {

// dst = src with the first lengths[b] steps (of `width` values) of every column b in reverse
// order, the others in place. Its own inverse.
template <class T>
void reverse_steps(const arma::Mat<T>& src, arma::Mat<T>& dst, std::size_t width,
                   const std::vector<std::size_t>& lengths) {
  const std::size_t steps = src.n_rows / width;
  for (std::size_t b = 0; b < src.n_cols; ++b) {
    const T* from = src.colptr(b);
    T* to = dst.colptr(b);
    const std::size_t length = lengths[b];
    for (std::size_t t = 0; t < steps; ++t) {
      const std::size_t s = t < length ? length - 1 - t : t;
      std::copy_n(from + s * width, width, to + t * width);
    }
  }
}

// y = [a; b] per step (sequences of `width` values per step) or per sample (steps = 1).
template <class T>
void interleave(const arma::Mat<T>& a, const arma::Mat<T>& b, std::size_t width, arma::Mat<T>& y) {
  const std::size_t steps = a.n_rows / width;
  for (std::size_t c = 0; c < a.n_cols; ++c)
    for (std::size_t t = 0; t < steps; ++t) {
      std::copy_n(a.colptr(c) + t * width, width, y.colptr(c) + 2 * t * width);
      std::copy_n(b.colptr(c) + t * width, width, y.colptr(c) + (2 * t + 1) * width);
    }
}

// The inverse of interleave: a and b (already sized) from y.
template <class T>
void split(const arma::Mat<T>& y, std::size_t width, arma::Mat<T>& a, arma::Mat<T>& b) {
  const std::size_t steps = a.n_rows / width;
  for (std::size_t c = 0; c < y.n_cols; ++c)
    for (std::size_t t = 0; t < steps; ++t) {
      std::copy_n(y.colptr(c) + 2 * t * width, width, a.colptr(c) + t * width);
      std::copy_n(y.colptr(c) + (2 * t + 1) * width, width, b.colptr(c) + t * width);
    }
}

// The two directions of `layer`; a recurrent layer with its state in its input or output
// has no direction to reverse (ConfigError).
std::vector<Child> directions(const AnyLayer& layer) {
  const RecurrentOptions* o = nullptr;
  if (const auto* l = dynamic_cast<const LSTM*>(&*layer)) o = &l->options();
  if (const auto* l = dynamic_cast<const GRU*>(&*layer)) o = &l->options();
  if (const auto* l = dynamic_cast<const SimpleRNN*>(&*layer)) o = &l->options();
  if (o && (o->initial_state || o->return_state))
    throw ConfigError("Bidirectional takes a recurrent layer without initial_state and "
                      "return_state: the states of two directions are not one state");
  return name_children({layer.named("forward"), layer.named("backward")});
}

}  // namespace

Bidirectional::Bidirectional(AnyLayer layer) : children_(directions(layer)) {}

Shape Bidirectional::output_shape(const Shape& input) const {
  if (input.rank() != 2) throw ShapeError("expected a sequence (T, F), got " + input.str());
  Shape one;
  try {
    one = children_[0].layer->declaration(input)->output;
  } catch (Error& e) {
    e.prepend_path(children_[0].name);
    throw;
  }
  if (one.rank() == 2 && one[0] == input[0]) return Shape{input[0], 2 * one[1]};
  if (one.rank() == 1) return Shape{2 * one[0]};
  throw ShapeError("expected the layer to give every step (" + std::to_string(input[0]) +
                   ", H) or the last (H), got " + one.str() +
                   " (a layer with initial_state or return_state has no direction)");
}

std::vector<Part> Bidirectional::parts(const Shape& input) const {
  return {Part{children_[0].name, children_[0].layer.get(), input},
          Part{children_[1].name, children_[1].layer.get(), input}};
}

template <class T>
void Bidirectional::forward_t(const Tree<T>& params, const Tree<T>& state,
                              const ConstBuffer<T>& x, const LayerCall<T>& call,
                              BidirectionalCache<T>& cache, ForwardResult<T>& out) const {
  const std::size_t steps = call.input()[0], n_in = call.input()[1];
  detail::sequence_lengths(call.context(), x->n_cols, steps, cache.lengths);
  cache.prepare(children_);
  if (!cache.reversed) cache.reversed = std::make_shared<arma::Mat<T>>();
  cache.reversed->set_size(x->n_rows, x->n_cols);
  reverse_steps(*x, *cache.reversed, n_in, cache.lengths);
  const ConstBuffer<T> inputs[2] = {x, cache.reversed};
  for (std::size_t i = 0; i < 2; ++i) {
    const Child& c = children_[i];
    forward_child(c, child_node(params, c.name), child_node(state, c.name), inputs[i],
                  call.input(), call.context(), cache.steps[i]);
  }
  const arma::Mat<T>& ahead = cache.steps[0].y();
  const arma::Mat<T>& behind = cache.steps[1].y();
  arma::Mat<T>& y = out.write_output(call.output().size(), x->n_cols);
  if (call.output().rank() == 2) {
    const std::size_t width = call.output()[1] / 2;
    // The backward direction's outputs back in time order, through y's second halves.
    arma::Mat<T> back(behind.n_rows, behind.n_cols);
    reverse_steps(behind, back, width, cache.lengths);
    interleave(ahead, back, width, y);
  } else {
    interleave(ahead, behind, ahead.n_rows, y);
  }
  gather_state(children_, cache.steps, out.state);
}

template <class T>
void Bidirectional::backward_t(const Tree<T>& params, const BidirectionalCache<T>& cache,
                               const arma::Mat<T>& dy, const Needs& needs,
                               BackwardResult<T>& out) const {
  const Shape& output = cache.output_shape();
  const bool sequences = output.rank() == 2;
  const std::size_t width = sequences ? output[1] / 2 : output[0] / 2;
  const std::size_t rows = dy.n_rows / 2, n_in = cache.input_shape()[1];
  out.buffers.resize(3);
  arma::Mat<T>& dy_ahead = out.buffers[0];
  arma::Mat<T>& dy_behind = out.buffers[1];
  dy_ahead.set_size(rows, dy.n_cols);
  dy_behind.set_size(rows, dy.n_cols);
  if (sequences) {
    arma::Mat<T>& in_order = out.buffers[2];
    in_order.set_size(rows, dy.n_cols);
    split(dy, width, dy_ahead, in_order);
    reverse_steps(in_order, dy_behind, width, cache.lengths);
  } else {
    split(dy, width, dy_ahead, dy_behind);
  }
  out.parts.resize(2);
  const arma::Mat<T>* dys[2] = {&dy_ahead, &dy_behind};
  for (std::size_t i = 0; i < 2; ++i) {
    const Child& c = children_[i];
    backward_child(c, child_node(params, c.name), *cache.steps[i].cache, *dys[i],
                   needs.child(c.name, needs.input), *out.grads.find(c.name), out.parts[i]);
  }
  if (!needs.input) return;
  // dx = the forward direction's dx + the backward direction's, put back in time order.
  out.dx.set_size(out.parts[0].dx.n_rows, out.parts[0].dx.n_cols);
  reverse_steps(out.parts[1].dx, out.dx, n_in, cache.lengths);
  out.dx += out.parts[0].dx;
}

template <class T>
void Bidirectional::infer_t(const Tree<T>& params, const Tree<T>& state, const arma::Mat<T>& x,
                            const LayerCall<T>& call, arma::Mat<T>& y) const {
  const std::size_t steps = call.input()[0], n_in = call.input()[1];
  const std::vector<std::size_t> lengths(x.n_cols, steps);
  arma::Mat<T> reversed(x.n_rows, x.n_cols), ahead, behind;
  reverse_steps(x, reversed, n_in, lengths);
  infer_child(children_[0], child_node(params, children_[0].name),
              child_node(state, children_[0].name), x, call.input(), ahead);
  infer_child(children_[1], child_node(params, children_[1].name),
              child_node(state, children_[1].name), reversed, call.input(), behind);
  y.set_size(call.output().size(), x.n_cols);
  if (call.output().rank() == 2) {
    const std::size_t width = call.output()[1] / 2;
    arma::Mat<T> back(behind.n_rows, behind.n_cols);
    reverse_steps(behind, back, width, lengths);
    interleave(ahead, back, width, y);
  } else {
    interleave(ahead, behind, ahead.n_rows, y);
  }
}

template class LayerImpl<Bidirectional, BidirectionalCache>;

}  // namespace layercache
