// Flatten: the output aliases the input; backward passes dy through.
#include "layercache/layers/flatten.hpp"

#include "layer_instantiation.hpp"

namespace layercache {

Shape Flatten::output_shape(const Shape& input) const {
  if (input.size() == 0)
    throw ShapeError("expected an input shape with at least one value, got " + input.str());
  return Shape{input.size()};
}

template <class T>
void Flatten::forward_t(const Tree<T>&, const Tree<T>&, const ConstBuffer<T>& x,
                        const Shape& x_shape, const Context&, ForwardResult<T>& out) const {
  out.shape = output_shape(x_shape);
  check_rows(x->n_rows, x_shape);
  out.output = x;  // the same column of values, read as a vector
  auto& cache = out.template reuse_cache<FlattenCache<T>>();
  cache.rows = x->n_rows;
  cache.batch = x->n_cols;
}

template <class T>
void Flatten::backward_t(const Tree<T>&, const Cache& cache_base, const arma::Mat<T>& dy,
                         const Needs& needs, BackwardResult<T>& out) const {
  const auto& cache = cache_as<FlattenCache<T>>(cache_base, "flatten");
  if (dy.n_rows != cache.rows || dy.n_cols != cache.batch)
    throw ShapeError("expected dy (" + std::to_string(cache.rows) + " × " +
                     std::to_string(cache.batch) + "), got (" + std::to_string(dy.n_rows) +
                     " × " + std::to_string(dy.n_cols) + ")");
  if (needs.input)
    out.dx = dy;
  else
    out.dx.reset();
}

template <class T>
void Flatten::infer_t(const Tree<T>&, const Tree<T>&, const arma::Mat<T>& x,
                      const Shape& x_shape, arma::Mat<T>& y) const {
  check_rows(x.n_rows, x_shape);
  y = x;
}

LAYERCACHE_INSTANTIATE_LAYER(Flatten)

}  // namespace layercache
