// Dense layer: forward and backward side by side.
#include "layercache/layers/dense.hpp"

#include "layercache/sizes.hpp"

#include "../gemm.hpp"
#include "../split_work.hpp"

namespace layercache {
namespace {

// Rows per block of a split product: the float kernels' vector width, so both tasks run
// the BLAS's full-width kernels.
constexpr std::size_t row_block = 16;

using detail::gemm;

}  // namespace

Dense::Dense(std::size_t n_in, std::size_t n_out, DenseOptions options)
    : n_in_(n_in), n_out_(n_out), options_(options) {
  if (n_in == 0 || n_out == 0)
    throw ConfigError("Dense needs positive sizes, got n_in = " + std::to_string(n_in) +
                      ", n_out = " + std::to_string(n_out));
  checked_mul(n_out, n_in, "values of the weight n_out × n_in");
}

Shape Dense::output_shape(const Shape& input) const {
  if (input.size() != n_in_)
    throw ShapeError("expected input (" + std::to_string(n_in_) + "), got " + input.str());
  return Shape{n_out_};
}

std::vector<TensorSpec> Dense::param_specs(const Shape&) const {
  std::vector<TensorSpec> specs{{"weight", n_out_, n_in_, Role::weight, n_in_, n_out_}};
  if (options_.bias) specs.push_back({"bias", n_out_, 1, Role::bias, n_in_, n_out_});
  return specs;
}

template <class T>
void Dense::forward_t(const Tensors<T>& params, const ConstBuffer<T>& x, arma::Mat<T>& y,
                      DenseCache<T>& cache, const LayerCall<T>& call) const {
  const arma::Mat<T>& w = params["weight"];
  const T* bias = options_.bias ? params["bias"].memptr() : nullptr;
  const std::size_t batch = x->n_cols;
  cache.x = x;
  // Split when there are at least two row blocks to share.
  Executor* executor = detail::splitting(n_out_ >= 2 * row_block ? call.executor() : nullptr,
                                         double(n_out_) * n_in_ * batch,
                                         detail::min_split_products);
  if (!executor) {
    infer_t(params, *x, y, call);
    return;
  }
  // Each thread computes a block of output rows: y[rows] = w[rows] · x + bias[rows].
  auto task = [&](std::size_t i, std::size_t tasks) noexcept {
    const detail::Share rows(n_out_, row_block, i, tasks);
    const std::size_t m = rows.end - rows.begin;
    gemm<T>('N', 'N', m, batch, n_in_, w.memptr() + rows.begin, n_out_, x->memptr(), n_in_,
            y.memptr() + rows.begin, n_out_);
    if (bias)
      for (std::size_t j = 0; j < batch; ++j) {
        T* col = y.colptr(j) + rows.begin;
        for (std::size_t r = 0; r < m; ++r) col[r] += bias[rows.begin + r];
      }
  };
  detail::run_on(*executor, task);
}

template <class T>
void Dense::backward_t(const Tensors<T>& params, const DenseCache<T>& cache,
                       const arma::Mat<T>& dy, Gradients<T>& grads) const {
  const arma::Mat<T>& x = *cache.x;
  const arma::Mat<T>& w = params["weight"];
  arma::Mat<T>* dweight = grads.param("weight");
  arma::Mat<T>* dbias = options_.bias ? grads.param("bias") : nullptr;
  arma::Mat<T>* dx = grads.dx();
  const std::size_t batch = x.n_cols;
  const double work = double(n_out_) * n_in_ * batch * (double(dweight != nullptr) + (dx != nullptr));
  // Split when there are at least two row blocks to share (of dW, or of dx).
  const bool blocks = n_out_ >= 2 * row_block || (dx && n_in_ >= 2 * row_block);
  Executor* executor = detail::splitting(blocks ? grads.executor() : nullptr, work,
                                         detail::min_split_products);
  if (!executor) {
    if (dweight) *dweight = dy * x.t();
    if (dbias) *dbias = arma::sum(dy, 1);
    if (dx) *dx = w.t() * dy;
    return;
  }
  // Each thread computes a block of rows of the weight gradient (dy[rows] · xᵀ) and of the
  // bias gradient, and a block of rows of dx (w[:, rows]ᵀ · dy). The targets are sized.
  auto task = [&](std::size_t i, std::size_t tasks) noexcept {
    const detail::Share rows(n_out_, row_block, i, tasks);
    const std::size_t m = rows.end - rows.begin;
    if (dweight)
      gemm<T>('N', 'T', m, n_in_, batch, dy.memptr() + rows.begin, n_out_, x.memptr(), n_in_,
              dweight->memptr() + rows.begin, n_out_);
    if (dbias) {
      T* db = dbias->memptr();
      std::fill_n(db + rows.begin, m, T(0));
      for (std::size_t j = 0; j < batch; ++j) {
        const T* col = dy.colptr(j) + rows.begin;
        for (std::size_t r = 0; r < m; ++r) db[rows.begin + r] += col[r];
      }
    }
    if (dx) {
      const detail::Share inputs(n_in_, row_block, i, tasks);
      gemm<T>('T', 'N', inputs.end - inputs.begin, batch, n_out_,
              w.memptr() + inputs.begin * n_out_, n_out_, dy.memptr(), n_out_,
              dx->memptr() + inputs.begin, n_in_);
    }
  };
  detail::run_on(*executor, task);
}

template <class T>
void Dense::infer_t(const Tensors<T>& params, const arma::Mat<T>& x, arma::Mat<T>& y,
                    const LayerCall<T>&) const {
  y = params["weight"] * x;
  if (options_.bias) y.each_col() += params["bias"];
}

template class LayerImpl<Dense, DenseCache>;

}  // namespace layercache
