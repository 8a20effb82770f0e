// Dense layer: forward and backward side by side.
#include "layercache/layers/dense.hpp"

#include "layer_instantiation.hpp"
#include "../split_work.hpp"

namespace layercache {
namespace {

// Rows per block of a split product: the float kernels' vector width, so both tasks run
// the BLAS's full-width kernels.
constexpr std::size_t row_block = 16;

// C (m × n, leading dimension ldc) = op(A) · op(B) with the BLAS, on raw column-major
// blocks (op = transpose for 'T').
template <class T>
void gemm(char trans_a, char trans_b, std::size_t m, std::size_t n, std::size_t k, const T* a,
          std::size_t lda, const T* b, std::size_t ldb, T* c, std::size_t ldc) noexcept {
  if (m == 0 || n == 0) return;
  const arma::blas_int bm = arma::blas_int(m), bn = arma::blas_int(n), bk = arma::blas_int(k),
                       blda = arma::blas_int(lda), bldb = arma::blas_int(ldb),
                       bldc = arma::blas_int(ldc);
  const T one = 1, zero = 0;
  arma::blas::gemm<T>(&trans_a, &trans_b, &bm, &bn, &bk, &one, a, &blda, b, &bldb, &zero, c,
                      &bldc);
}

}  // namespace

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
                      const Shape&, const Context& ctx, ForwardResult<T>& out) const {
  check_rows(x->n_rows, Shape{n_in_});
  const arma::Mat<T>& w = param(params, "weight", n_out_, n_in_);
  arma::Mat<T>& y = out.write_output(n_out_, x->n_cols);
  const std::size_t batch = x->n_cols;
  // Split when there are at least two row blocks to share.
  if (Executor* executor = detail::splitting(n_out_ >= 2 * row_block ? ctx.executor : nullptr,
                                             double(n_out_) * n_in_ * batch,
                                             detail::min_split_products)) {
    // Each thread computes a block of output rows: y[rows] = w[rows] · x + bias[rows].
    const T* bias = options_.bias ? param(params, "bias", n_out_, 1).memptr() : nullptr;
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
  } else {
    y = w * (*x);
    if (options_.bias) y.each_col() += param(params, "bias", n_out_, 1);
  }
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
  const bool want_weight = needs.param("weight");
  const bool want_bias = options_.bias && needs.param("bias");
  const std::size_t batch = x.n_cols;
  const double work = double(n_out_) * n_in_ * batch * (double(want_weight) + needs.input);
  // Split when there are at least two row blocks to share (of dW, or of dx).
  const bool blocks = n_out_ >= 2 * row_block || (needs.input && n_in_ >= 2 * row_block);
  if (Executor* executor = detail::splitting(blocks ? needs.executor : nullptr, work,
                                             detail::min_split_products)) {
    // Each thread computes a block of rows of the weight gradient (dy[rows] · xᵀ) and of
    // the bias gradient, and a block of rows of dx (w[:, rows]ᵀ · dy).
    const auto sized = [](arma::Mat<T>& m, std::size_t rows, std::size_t cols) {
      m.set_size(rows, cols);
      return m.memptr();
    };
    T* dw = want_weight ? sized(out.grads.at("weight").value(), n_out_, n_in_) : nullptr;
    T* db = want_bias ? sized(out.grads.at("bias").value(), n_out_, 1) : nullptr;
    T* dx = needs.input ? sized(out.dx, n_in_, batch) : nullptr;
    auto task = [&](std::size_t i, std::size_t tasks) noexcept {
      const detail::Share rows(n_out_, row_block, i, tasks);
      const std::size_t m = rows.end - rows.begin;
      if (dw)
        gemm<T>('N', 'T', m, n_in_, batch, dy.memptr() + rows.begin, n_out_, x.memptr(), n_in_,
                dw + rows.begin, n_out_);
      if (db) {
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
                dx + inputs.begin, n_in_);
      }
    };
    detail::run_on(*executor, task);
  } else {
    if (want_weight) out.grads.at("weight").value() = dy * x.t();
    if (want_bias) out.grads.at("bias").value() = arma::sum(dy, 1);
    if (needs.input) out.dx = w.t() * dy;
  }
  if (!needs.input) out.dx.reset();
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
