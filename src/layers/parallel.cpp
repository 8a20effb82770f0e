// Parallel: fan-out to branches and a merge, forward and backward side by side. The merge
// itself (concat, add, multiply) is shared with Graph.
#include "layercache/layers/parallel.hpp"

#include <algorithm>
#include <utility>

namespace layercache {

const char* merge_name(Merge merge) noexcept {
  switch (merge) {
    case Merge::concat: return "concat";
    case Merge::add: return "add";
    case Merge::multiply: return "multiply";
    case Merge::subtract: return "subtract";
  }
  return "unknown";
}

Shape merged_shape(Merge merge, const std::vector<Shape>& shapes,
                   const std::vector<std::string>& names) {
  if (shapes.empty()) throw ConfigError("a merge needs at least one input");
  const Shape& first = shapes[0];
  auto mismatch = [&](std::size_t i, const std::string& what) {
    throw ShapeError(std::string("cannot ") + merge_name(merge) + " " + names[0] + " " +
                     first.str() + " with " + names[i] + " " + shapes[i].str() + ": " + what);
  };
  if (merge != Merge::concat) {
    for (std::size_t i = 1; i < shapes.size(); ++i)
      if (!(shapes[i] == first)) mismatch(i, "the shapes must be equal");
    return first;
  }
  std::size_t leading = first.rank() ? first[0] : 0;
  for (std::size_t i = 1; i < shapes.size(); ++i) {
    bool same_rest = shapes[i].rank() == first.rank();
    for (std::size_t d = 1; same_rest && d < first.rank(); ++d) same_rest = shapes[i][d] == first[d];
    if (!same_rest)
      mismatch(i, "all dimensions but the first (features, or channels) must be equal");
    leading += shapes[i][0];
  }
  switch (first.rank()) {
    case 1: return Shape{leading};
    case 2: return Shape{leading, first[1]};
    case 3: return Shape{leading, first[1], first[2]};
    default: return Shape{leading, first[1], first[2], first[3]};
  }
}

namespace detail {

template <class T>
void merge_into(Merge merge, const std::vector<const arma::Mat<T>*>& inputs, arma::Mat<T>& y) {
  if (merge == Merge::concat) {
    std::size_t row = 0;
    for (const arma::Mat<T>* in : inputs) {
      for (std::size_t j = 0; j < y.n_cols; ++j)
        std::copy(in->colptr(j), in->colptr(j) + in->n_rows, y.colptr(j) + row);
      row += in->n_rows;
    }
    return;
  }
  y = *inputs[0];
  for (std::size_t i = 1; i < inputs.size(); ++i) {
    if (merge == Merge::add)
      y += *inputs[i];
    else if (merge == Merge::subtract)
      y -= *inputs[i];
    else
      y %= *inputs[i];
  }
}

template <class T>
const arma::Mat<T>& merge_gradient(Merge merge, const std::vector<const arma::Mat<T>*>& inputs,
                                   std::size_t i, const arma::Mat<T>& dy, arma::Mat<T>& scratch) {
  switch (merge) {
    case Merge::add:
      return dy;
    case Merge::concat: {
      std::size_t row = 0;
      for (std::size_t k = 0; k < i; ++k) row += inputs[k]->n_rows;
      const std::size_t rows = inputs[i]->n_rows;
      scratch.set_size(rows, dy.n_cols);
      for (std::size_t j = 0; j < dy.n_cols; ++j)
        std::copy(dy.colptr(j) + row, dy.colptr(j) + row + rows, scratch.colptr(j));
      return scratch;
    }
    case Merge::multiply:
      scratch = dy;
      for (std::size_t k = 0; k < inputs.size(); ++k)
        if (k != i) scratch %= *inputs[k];
      return scratch;
    case Merge::subtract:
      if (i == 0) return dy;
      scratch = -dy;
      return scratch;
  }
  return dy;
}

template void merge_into(Merge, const std::vector<const arma::Mat<float>*>&, arma::Mat<float>&);
template void merge_into(Merge, const std::vector<const arma::Mat<double>*>&, arma::Mat<double>&);
template const arma::Mat<float>& merge_gradient(Merge, const std::vector<const arma::Mat<float>*>&,
                                                std::size_t, const arma::Mat<float>&,
                                                arma::Mat<float>&);
template const arma::Mat<double>& merge_gradient(Merge,
                                                 const std::vector<const arma::Mat<double>*>&,
                                                 std::size_t, const arma::Mat<double>&,
                                                 arma::Mat<double>&);

}  // namespace detail

Parallel::Parallel(std::initializer_list<AnyLayer> branches)
    : Parallel(std::vector<AnyLayer>(branches)) {}

Parallel::Parallel(std::vector<AnyLayer> branches, Merge merge)
    : children_(name_children(branches)), merge_(merge) {}

Shape Parallel::output_shape(const Shape& input) const {
  std::vector<Shape> shapes;
  std::vector<std::string> names;
  for (const auto& c : children_) {
    try {
      shapes.push_back(c.layer->declaration(input)->output);
    } catch (Error& e) {
      e.prepend_path(c.name);
      throw;
    }
    names.push_back(c.name);
  }
  return merged_shape(merge_, shapes, names);
}

std::vector<Part> Parallel::parts(const Shape& input) const {
  std::vector<Part> out;
  for (const auto& c : children_) out.push_back(Part{c.name, c.layer.get(), input});
  return out;
}

namespace {

// The outputs of the branches' results, in order (allocates nothing once `into` has room).
template <class T>
void outputs_of(const std::vector<ForwardResult<T>>& steps,
                std::vector<const arma::Mat<T>*>& into) {
  into.clear();
  for (const auto& s : steps) into.push_back(s.output.get());
}

}  // namespace

template <class T>
void Parallel::forward_t(const Tree<T>& params, const Tree<T>& state, const ConstBuffer<T>& x,
                         const LayerCall<T>& call, ChildrenCache<T>& cache,
                         ForwardResult<T>& out) const {
  cache.prepare(children_);
  for (std::size_t i = 0; i < children_.size(); ++i) {
    const Child& c = children_[i];
    forward_child(c, child_node(params, c.name), child_node(state, c.name), x, call.input(),
                  call.context(), cache.steps[i]);
  }
  thread_local std::vector<const arma::Mat<T>*> inputs;
  outputs_of(cache.steps, inputs);
  detail::merge_into(merge_, inputs, out.write_output(call.output().size(), x->n_cols));
  gather_state(children_, cache.steps, out.state);
}

template <class T>
void Parallel::backward_t(const Tree<T>& params, const ChildrenCache<T>& cache,
                          const arma::Mat<T>& dy, const Needs& needs,
                          BackwardResult<T>& out) const {
  out.parts.resize(children_.size());
  thread_local std::vector<const arma::Mat<T>*> inputs;
  outputs_of(cache.steps, inputs);
  for (std::size_t i = 0; i < children_.size(); ++i) {
    const Child& c = children_[i];
    const arma::Mat<T>& dyi = detail::merge_gradient(merge_, inputs, i, dy, out.workspace);
    backward_child(c, child_node(params, c.name), *cache.steps[i].cache, dyi,
                   needs.child(c.name, needs.input), *out.grads.find(c.name), out.parts[i]);
  }
  if (!needs.input) return;
  // dx = Σ branch dx: the first branch's buffer is handed over and the others added in place.
  out.dx.swap(out.parts[0].dx);
  for (std::size_t i = 1; i < children_.size(); ++i) out.dx += out.parts[i].dx;
}

template <class T>
void Parallel::infer_t(const Tree<T>& params, const Tree<T>& state, const arma::Mat<T>& x,
                       const LayerCall<T>& call, arma::Mat<T>& y) const {
  std::vector<arma::Mat<T>> outputs(children_.size());
  std::vector<const arma::Mat<T>*> inputs;
  for (std::size_t i = 0; i < children_.size(); ++i) {
    const Child& c = children_[i];
    infer_child(c, child_node(params, c.name), child_node(state, c.name), x, call.input(),
                outputs[i]);
    inputs.push_back(&outputs[i]);
  }
  y.set_size(call.output().size(), x.n_cols);
  detail::merge_into(merge_, inputs, y);
}

template class LayerImpl<Parallel, ChildrenCache>;

}  // namespace layercache
