// Dense layer: forward and backward side by side.
#include "layercache/layers/dense.hpp"

#include "layer_instantiation.hpp"

namespace layercache {

Dense::Dense(std::size_t n_in, std::size_t n_out, DenseOptions options)
    : n_in_(n_in), n_out_(n_out), options_(options) {
  if (n_in == 0 || n_out == 0)
    throw ConfigError("Dense needs positive sizes, got n_in = " + std::to_string(n_in) +
                      ", n_out = " + std::to_string(n_out));
}

Shape Dense::output_shape(const Shape& input) const {
  if (input.size() != n_in_)
    throw ShapeError("expected input (" + std::to_string(n_in_) + "), got " + input.str());
  return Shape{n_out_};
}

std::vector<TensorSpec> Dense::param_specs(const Shape& input) const {
  output_shape(input);
  std::vector<TensorSpec> specs{{"weight", n_out_, n_in_, Role::weight, n_in_, n_out_}};
  if (options_.bias) specs.push_back({"bias", n_out_, 1, Role::bias, n_in_, n_out_});
  return specs;
}

template <class T>
void Dense::forward_t(const Tree<T>& params, const Tree<T>&, const ConstBuffer<T>& x,
                      const Shape&, const Context&, ForwardResult<T>& out) const {
  check_rows(x->n_rows, Shape{n_in_});
  const arma::Mat<T>& w = param(params, "weight", n_out_, n_in_);
  arma::Mat<T>& y = out.write_output(n_out_, x->n_cols);
  y = w * (*x);
  if (options_.bias) y.each_col() += param(params, "bias", n_out_, 1);
  out.shape = Shape{n_out_};
  out.template reuse_cache<DenseCache<T>>().x = x;
}

template <class T>
void Dense::backward_t(const Tree<T>& params, const Cache& cache_base, const arma::Mat<T>& dy,
                       const Needs& needs, BackwardResult<T>& out) const {
  const auto& cache = cache_as<DenseCache<T>>(cache_base, "dense");
  if (!cache.x || cache.x->n_rows != n_in_)
    throw CacheError("expected the cache of a dense layer with " + std::to_string(n_in_) +
                     " inputs, got one with " + std::to_string(cache.x ? cache.x->n_rows : 0));
  const arma::Mat<T>& x = *cache.x;
  if (dy.n_rows != n_out_ || dy.n_cols != x.n_cols)
    throw ShapeError("expected dy (" + std::to_string(n_out_) + " × " + std::to_string(x.n_cols) +
                     "), got (" + std::to_string(dy.n_rows) + " × " + std::to_string(dy.n_cols) + ")");
  const arma::Mat<T>& w = param(params, "weight", n_out_, n_in_);
  if (needs.param("weight")) out.grads.at("weight").value() = dy * x.t();
  if (options_.bias && needs.param("bias")) out.grads.at("bias").value() = arma::sum(dy, 1);
  if (needs.input)
    out.dx = w.t() * dy;
  else
    out.dx.reset();
}

template <class T>
void Dense::infer_t(const Tree<T>& params, const Tree<T>&, const arma::Mat<T>& x, const Shape&,
                    arma::Mat<T>& y) const {
  check_rows(x.n_rows, Shape{n_in_});
  y = param(params, "weight", n_out_, n_in_) * x;
  if (options_.bias) y.each_col() += param(params, "bias", n_out_, 1);
}

LAYERCACHE_INSTANTIATE_LAYER(Dense)

}  // namespace layercache
