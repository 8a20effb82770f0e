// Reshape: the output aliases the input; backward passes dy through.
#include "layercache/layers/reshape.hpp"

#include "layer_instantiation.hpp"

namespace layercache {

Reshape::Reshape(Shape target) : target_(target) {
  if (target.size() == 0)
    throw ConfigError("Reshape needs a target shape with at least one value, got " + target.str());
}

Shape Reshape::output_shape(const Shape& input) const {
  if (input.size() != target_.size())
    throw ShapeError("expected input of " + std::to_string(target_.size()) +
                     " values to reshape into " + target_.str() + ", got " + input.str() +
                     " with " + std::to_string(input.size()));
  return target_;
}

template <class T>
void Reshape::forward_t(const Tree<T>&, const Tree<T>&, const ConstBuffer<T>& x,
                        const Shape& x_shape, const Context&, ForwardResult<T>& out) const {
  out.shape = output_shape(x_shape);
  check_rows(x->n_rows, x_shape);
  out.output = x;  // the same column of values, read with the new shape
  auto& cache = out.template reuse_cache<ReshapeCache<T>>();
  cache.rows = x->n_rows;
  cache.batch = x->n_cols;
}

template <class T>
void Reshape::backward_t(const Tree<T>&, const Cache& cache_base, const arma::Mat<T>& dy,
                         const Needs& needs, BackwardResult<T>& out) const {
  const auto& cache = cache_as<ReshapeCache<T>>(cache_base, "reshape");
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
void Reshape::infer_t(const Tree<T>&, const Tree<T>&, const arma::Mat<T>& x,
                      const Shape& x_shape, arma::Mat<T>& y) const {
  output_shape(x_shape);
  check_rows(x.n_rows, x_shape);
  y = x;
}

LAYERCACHE_INSTANTIATE_LAYER(Reshape)

}  // namespace layercache
