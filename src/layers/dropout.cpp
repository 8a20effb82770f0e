// Dropout and Dropout2D: the mask drawn in forward, kept in the cache, applied again in
// backward.
#include "layercache/layers/dropout.hpp"

#include <cmath>
#include <string>

namespace layercache {
namespace {

void check_rate(const char* layer, double rate) {
  if (!(rate >= 0 && rate < 1))
    throw ConfigError(std::string(layer) + " needs a rate in [0, 1), got " + std::to_string(rate));
}

// Fills `mask` (sized) with 0 or 1 / (1 − rate), one uniform draw per entry in order.
template <class T>
void draw_mask(arma::Mat<T>& mask, double rate, Rng& rng) {
  const T kept = T(1 / (1 - rate));
  for (T& m : mask) m = rng.uniform() >= rate ? kept : T(0);
}

// out = in with channel block c of sample j scaled by mask(c, j) (blocks of `size` rows).
template <class T>
void scale_channels(const arma::Mat<T>& in, const arma::Mat<T>& mask, std::size_t size,
                    arma::Mat<T>& out) {
  for (std::size_t j = 0; j < in.n_cols; ++j)
    for (std::size_t c = 0; c < mask.n_rows; ++c) {
      const T k = mask(c, j);
      const T* v = in.colptr(j) + c * size;
      T* o = out.colptr(j) + c * size;
      for (std::size_t s = 0; s < size; ++s) o[s] = v[s] * k;
    }
}

}  // namespace

Dropout::Dropout(DropoutOptions options) : options_(options) { check_rate("Dropout", options.rate); }

template <class T>
void Dropout::forward_t(const Tensors<T>&, const ConstBuffer<T>& x, arma::Mat<T>& y,
                        DropoutCache<T>& cache, const LayerCall<T>& call) const {
  if (!call.training() || options_.rate == 0) {
    cache.mask.reset();
    y = *x;
    return;
  }
  cache.mask.set_size(x->n_rows, x->n_cols);
  draw_mask(cache.mask, options_.rate, call.rng());
  y = *x % cache.mask;
}

template <class T>
void Dropout::backward_t(const Tensors<T>&, const DropoutCache<T>& cache, const arma::Mat<T>& dy,
                         Gradients<T>& grads) const {
  arma::Mat<T>& dx = *grads.dx();  // backward_t runs only when dx is wanted (no params)
  if (cache.mask.is_empty())
    dx = dy;
  else
    dx = dy % cache.mask;
}

template <class T>
void Dropout::infer_t(const Tensors<T>&, const arma::Mat<T>& x, arma::Mat<T>& y,
                      const LayerCall<T>&) const {
  y = x;
}

Dropout2D::Dropout2D(DropoutOptions options) : options_(options) {
  check_rate("Dropout2D", options.rate);
}

Shape Dropout2D::output_shape(const Shape& input) const {
  if (input.rank() != 3)
    throw ShapeError("expected input (channels, height, width), got " + input.str());
  return input;
}

template <class T>
void Dropout2D::forward_t(const Tensors<T>&, const ConstBuffer<T>& x, arma::Mat<T>& y,
                          DropoutCache<T>& cache, const LayerCall<T>& call) const {
  if (!call.training() || options_.rate == 0) {
    cache.mask.reset();
    y = *x;
    return;
  }
  const Shape& shape = call.input();
  cache.mask.set_size(shape[0], x->n_cols);
  draw_mask(cache.mask, options_.rate, call.rng());
  scale_channels(*x, cache.mask, shape[1] * shape[2], y);
}

template <class T>
void Dropout2D::backward_t(const Tensors<T>&, const DropoutCache<T>& cache,
                           const arma::Mat<T>& dy, Gradients<T>& grads) const {
  arma::Mat<T>& dx = *grads.dx();  // backward_t runs only when dx is wanted (no params)
  if (cache.mask.is_empty()) {
    dx = dy;
    return;
  }
  const Shape& shape = cache.input_shape();
  scale_channels(dy, cache.mask, shape[1] * shape[2], dx);
}

template <class T>
void Dropout2D::infer_t(const Tensors<T>&, const arma::Mat<T>& x, arma::Mat<T>& y,
                        const LayerCall<T>&) const {
  y = x;
}

template class LayerImpl<Dropout, DropoutCache>;
template class LayerImpl<Dropout2D, DropoutCache>;

}  // namespace layercache
