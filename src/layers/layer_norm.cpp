// LayerNorm: forward and backward side by side, one sample column at a time.
#include "layercache/layers/layer_norm.hpp"

#include <cmath>
#include <string>

namespace layercache {
namespace {

// Normalizes the n values of one sample: writes x̂ into `normalized` and γ ⊙ x̂ + β into
// `out` (either may be the other), returns 1 / √(σ² + eps).
template <class T>
T normalize_sample(const T* x, std::size_t n, T eps, const T* scale, const T* shift,
                   T* normalized, T* out) {
  double sum = 0;
  for (std::size_t i = 0; i < n; ++i) sum += double(x[i]);
  const T mean = T(sum / double(n));
  double squares = 0;
  for (std::size_t i = 0; i < n; ++i) squares += double(x[i] - mean) * double(x[i] - mean);
  const T inv_std = T(1) / std::sqrt(T(squares / double(n)) + eps);
  for (std::size_t i = 0; i < n; ++i) {
    const T h = (x[i] - mean) * inv_std;
    normalized[i] = h;
    out[i] = scale[i] * h + shift[i];
  }
  return inv_std;
}

}  // namespace

LayerNorm::LayerNorm(LayerNormOptions options) : options_(options) {
  if (!(options.eps > 0 && std::isfinite(options.eps)))
    throw ConfigError("LayerNorm needs a positive eps, got " + std::to_string(options.eps));
}

Shape LayerNorm::output_shape(const Shape& input) const {
  if (input.size() < 2)
    throw ShapeError("expected input of at least 2 values per sample, got " + input.str());
  return input;
}

std::vector<TensorSpec> LayerNorm::param_specs(const Shape& input) const {
  return {{"scale", input.size(), 1, Role::scale}, {"shift", input.size(), 1, Role::shift}};
}

template <class T>
void LayerNorm::forward_t(const Tensors<T>& params, const ConstBuffer<T>& x, arma::Mat<T>& y,
                          LayerNormCache<T>& cache, const LayerCall<T>&) const {
  const std::size_t n = x->n_rows;
  cache.normalized.set_size(n, x->n_cols);
  cache.inv_std.set_size(x->n_cols);
  for (std::size_t j = 0; j < x->n_cols; ++j)
    cache.inv_std[j] = normalize_sample(x->colptr(j), n, T(options_.eps),
                                        params["scale"].memptr(), params["shift"].memptr(),
                                        cache.normalized.colptr(j), y.colptr(j));
}

template <class T>
void LayerNorm::backward_t(const Tensors<T>& params, const LayerNormCache<T>& cache,
                           const arma::Mat<T>& dy, Gradients<T>& grads) const {
  const arma::Mat<T>& h = cache.normalized;
  if (arma::Mat<T>* dshift = grads.param("shift")) *dshift = arma::sum(dy, 1);
  if (arma::Mat<T>* dscale = grads.param("scale")) *dscale = arma::sum(dy % h, 1);
  arma::Mat<T>* dx = grads.dx();
  if (!dx) return;
  const T* gamma = params["scale"].memptr();
  const std::size_t n = dy.n_rows;
  for (std::size_t j = 0; j < dy.n_cols; ++j) {
    const T* d = dy.colptr(j);
    const T* hj = h.colptr(j);
    double sum_g = 0, sum_gh = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const double g = double(gamma[i]) * double(d[i]);
      sum_g += g;
      sum_gh += g * double(hj[i]);
    }
    const T mean_g = T(sum_g / double(n)), mean_gh = T(sum_gh / double(n));
    T* out = dx->colptr(j);
    for (std::size_t i = 0; i < n; ++i)
      out[i] = (gamma[i] * d[i] - mean_g - hj[i] * mean_gh) * cache.inv_std[j];
  }
}

template <class T>
void LayerNorm::infer_t(const Tensors<T>& params, const arma::Mat<T>& x, arma::Mat<T>& y,
                        const LayerCall<T>&) const {
  // x̂ goes into y itself, then y = γ ⊙ x̂ + β over it: no scratch.
  for (std::size_t j = 0; j < x.n_cols; ++j)
    normalize_sample(x.colptr(j), x.n_rows, T(options_.eps), params["scale"].memptr(),
                     params["shift"].memptr(), y.colptr(j), y.colptr(j));
}

template class LayerImpl<LayerNorm, LayerNormCache>;

}  // namespace layercache
