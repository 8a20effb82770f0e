// Softmax and LogSoftmax over each column: forward and backward math side by side. The
// forward math is softmax_columns / log_softmax_columns, shared with the losses.
#include "layercache/layers/softmax.hpp"

#include <cmath>

#include "layercache/losses.hpp"

namespace layercache {
namespace {

// A matrix over the columns [first, first + count) of m, sharing its memory.
template <class T>
arma::Mat<T> columns(const arma::Mat<T>& m, std::size_t first, std::size_t count) {
  return arma::Mat<T>(const_cast<T*>(m.colptr(first)), m.n_rows, count, false, true);
}

// y = f(x) column by column, with the columns split across the executor's threads for
// large batches (f writes the columns it is given and nothing else).
template <class T, class F>
void by_columns(Executor* executor, const arma::Mat<T>& x, arma::Mat<T>& y, F f) {
  detail::by_column_ranges(executor, x.n_cols, x.n_rows,
                           [&](std::size_t first, std::size_t count) noexcept {
                             const arma::Mat<T> in = columns(x, first, count);
                             arma::Mat<T> out = columns(y, first, count);
                             f(in, out);
                           });
}

// dx from the kept output y and dy, column by column: f(y, dy, dx, rows) writes one column
// (backward runs only when dx is wanted: these layers have no params).
template <class T, class F>
void backward_by_columns(Gradients<T>& grads, const arma::Mat<T>& y, const arma::Mat<T>& dy,
                         F f) {
  arma::Mat<T>& dx = *grads.dx();
  detail::by_column_ranges(grads.executor(), y.n_cols, y.n_rows,
                           [&](std::size_t first, std::size_t count) noexcept {
                             for (std::size_t j = first; j < first + count; ++j)
                               f(y.colptr(j), dy.colptr(j), dx.colptr(j), y.n_rows);
                           });
}

}  // namespace

template <class T>
void Softmax::forward_t(const Tensors<T>&, const ConstBuffer<T>& x, arma::Mat<T>& y,
                        OneTensorCache<T>& cache, const LayerCall<T>& call) const {
  by_columns(call.executor(), *x, y,
             [](const arma::Mat<T>& in, arma::Mat<T>& out) { softmax_columns(in, out); });
  cache.kept = call.output_buffer();
}

// dx = y ⊙ (dy − ⟨dy, y⟩) per column: the Jacobian diag(y) − y yᵀ applied to dy.
template <class T>
void Softmax::backward_t(const Tensors<T>&, const OneTensorCache<T>& cache,
                         const arma::Mat<T>& dy, Gradients<T>& grads) const {
  backward_by_columns(grads, *cache.kept, dy, [](const T* p, const T* g, T* d, arma::uword n) {
    double dot = 0;
    for (arma::uword i = 0; i < n; ++i) dot += double(g[i]) * double(p[i]);
    const T inner = T(dot);
    for (arma::uword i = 0; i < n; ++i) d[i] = p[i] * (g[i] - inner);
  });
}

template <class T>
void Softmax::infer_t(const Tensors<T>&, const arma::Mat<T>& x, arma::Mat<T>& y,
                      const LayerCall<T>&) const {
  softmax_columns(x, y);
}

template <class T>
void LogSoftmax::forward_t(const Tensors<T>&, const ConstBuffer<T>& x, arma::Mat<T>& y,
                           OneTensorCache<T>& cache, const LayerCall<T>& call) const {
  by_columns(call.executor(), *x, y,
             [](const arma::Mat<T>& in, arma::Mat<T>& out) { log_softmax_columns(in, out); });
  cache.kept = call.output_buffer();
}

// dx = dy − softmax(x)·Σ dy per column, with softmax(x) = exp(y).
template <class T>
void LogSoftmax::backward_t(const Tensors<T>&, const OneTensorCache<T>& cache,
                            const arma::Mat<T>& dy, Gradients<T>& grads) const {
  backward_by_columns(grads, *cache.kept, dy, [](const T* p, const T* g, T* d, arma::uword n) {
    double total = 0;
    for (arma::uword i = 0; i < n; ++i) total += g[i];
    const T sum = T(total);
    for (arma::uword i = 0; i < n; ++i) d[i] = g[i] - std::exp(p[i]) * sum;
  });
}

template <class T>
void LogSoftmax::infer_t(const Tensors<T>&, const arma::Mat<T>& x, arma::Mat<T>& y,
                         const LayerCall<T>&) const {
  log_softmax_columns(x, y);
}

template class LayerImpl<Softmax, OneTensorCache>;
template class LayerImpl<LogSoftmax, OneTensorCache>;

}  // namespace layercache
