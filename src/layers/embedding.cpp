// Embedding: a column of the table per id, forward and backward side by side.
#include "layercache/layers/embedding.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "layercache/sizes.hpp"

namespace layercache {

Embedding::Embedding(std::size_t n_ids, std::size_t n_out) : n_ids_(n_ids), n_out_(n_out) {
  if (n_ids == 0 || n_out == 0)
    throw ConfigError("Embedding needs positive sizes, got n_ids = " + std::to_string(n_ids) +
                      ", n_out = " + std::to_string(n_out));
  checked_mul(n_out, n_ids, "values of the table n_out × n_ids");
}

Shape Embedding::output_shape(const Shape& input) const {
  if (input.size() == 0) throw ShapeError("expected input of T ≥ 1 ids, got " + input.str());
  checked_mul(input.size(), n_out_, "T × n_out");
  return Shape{input.size(), n_out_};
}

std::vector<TensorSpec> Embedding::param_specs(const Shape&) const {
  // One id reaches one column: fan-in 1, so the vectors start at the scale of one input.
  return {{"weight", n_out_, n_ids_, Role::weight, 1, n_out_}};
}

template <class T>
void Embedding::look_up(const arma::Mat<T>& table, const arma::Mat<T>& x, arma::Mat<T>& y,
                        std::vector<std::size_t>* ids) const {
  const std::size_t steps = x.n_rows;
  if (ids) ids->resize(x.n_elem);
  for (std::size_t b = 0; b < x.n_cols; ++b)
    for (std::size_t t = 0; t < steps; ++t) {
      const T v = x(t, b);
      if (!(v >= T(0) && v < T(n_ids_) && v == std::floor(v)))
        throw DataError("sample " + std::to_string(b) + ", step " + std::to_string(t) +
                        ": expected an id in [0, " + std::to_string(n_ids_) + "), got " +
                        std::to_string(double(v)));
      const auto id = std::size_t(v);
      if (ids) (*ids)[b * steps + t] = id;
      std::copy_n(table.colptr(id), n_out_, y.colptr(b) + t * n_out_);
    }
}

template <class T>
void Embedding::forward_t(const Tensors<T>& params, const ConstBuffer<T>& x, arma::Mat<T>& y,
                          EmbeddingCache<T>& cache, const LayerCall<T>&) const {
  look_up(params["weight"], *x, y, &cache.ids);
}

template <class T>
void Embedding::backward_t(const Tensors<T>&, const EmbeddingCache<T>& cache,
                           const arma::Mat<T>& dy, Gradients<T>& grads) const {
  if (arma::Mat<T>* dx = grads.dx()) dx->zeros();
  arma::Mat<T>* dweight = grads.param("weight");
  if (!dweight) return;
  dweight->zeros();
  const std::size_t steps = cache.ids.size() / std::max<std::size_t>(dy.n_cols, 1);
  for (std::size_t b = 0; b < dy.n_cols; ++b)
    for (std::size_t t = 0; t < steps; ++t) {
      T* column = dweight->colptr(cache.ids[b * steps + t]);
      const T* d = dy.colptr(b) + t * n_out_;
      for (std::size_t r = 0; r < n_out_; ++r) column[r] += d[r];
    }
}

template <class T>
void Embedding::infer_t(const Tensors<T>& params, const arma::Mat<T>& x, arma::Mat<T>& y,
                        const LayerCall<T>&) const {
  look_up(params["weight"], x, y, nullptr);
}

template class LayerImpl<Embedding, EmbeddingCache>;

}  // namespace layercache
