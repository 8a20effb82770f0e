// Softmax and LogSoftmax over each column: forward and backward math side by side; the
// contract (shapes, cache, buffer reuse) is shared in activation_base.hpp.
#include "layercache/layers/softmax.hpp"

#include <cmath>

#include "activation_base.hpp"

namespace layercache {
namespace {

// The largest entry of a column of n values.
template <class T>
T column_max(const T* p, arma::uword n) {
  T m = p[0];
  for (arma::uword i = 1; i < n; ++i) m = p[i] > m ? p[i] : m;
  return m;
}

// Calls f(in, out, m) for every column of x and the same column of y, with m the column's
// largest entry (both softmaxes shift by it so that no exponential overflows).
template <class T, class F>
void for_each_shifted_column(const arma::Mat<T>& x, arma::Mat<T>& y, F f) {
  if (x.n_rows == 0) return;
  for (arma::uword j = 0; j < x.n_cols; ++j)
    f(x.colptr(j), y.colptr(j), column_max(x.colptr(j), x.n_rows));
}

}  // namespace

template <class T>
struct ActivationMath<Softmax, T> {
  using Cache = SoftmaxCache<T>;
  static constexpr Keeps keeps = Keeps::output;
  explicit ActivationMath(const Softmax&) {}

  // The normalizer is accumulated in double: float columns of thousands of classes keep
  // their sum accurate.
  void forward(const arma::Mat<T>& x, arma::Mat<T>& y) const {
    const arma::uword n = x.n_rows;
    for_each_shifted_column(x, y, [n](const T* in, T* out, T m) {
      double sum = 0;
      for (arma::uword i = 0; i < n; ++i) {
        out[i] = std::exp(in[i] - m);
        sum += out[i];
      }
      const T scale = T(1.0 / sum);
      for (arma::uword i = 0; i < n; ++i) out[i] *= scale;
    });
  }
  // dx = y ⊙ (dy − ⟨dy, y⟩) per column: the Jacobian diag(y) − y yᵀ applied to dy.
  void backward(const arma::Mat<T>& y, const arma::Mat<T>& dy, arma::Mat<T>& dx) const {
    const arma::uword n = y.n_rows;
    for (arma::uword j = 0; j < y.n_cols; ++j) {
      const T* p = y.colptr(j);
      const T* g = dy.colptr(j);
      T* d = dx.colptr(j);
      double dot = 0;
      for (arma::uword i = 0; i < n; ++i) dot += double(g[i]) * double(p[i]);
      const T inner = T(dot);
      for (arma::uword i = 0; i < n; ++i) d[i] = p[i] * (g[i] - inner);
    }
  }
};

template <class T>
struct ActivationMath<LogSoftmax, T> {
  using Cache = LogSoftmaxCache<T>;
  static constexpr Keeps keeps = Keeps::output;
  explicit ActivationMath(const LogSoftmax&) {}

  void forward(const arma::Mat<T>& x, arma::Mat<T>& y) const {
    const arma::uword n = x.n_rows;
    for_each_shifted_column(x, y, [n](const T* in, T* out, T m) {
      double sum = 0;
      for (arma::uword i = 0; i < n; ++i) sum += std::exp(in[i] - m);
      const T log_normalizer = m + T(std::log(sum));
      for (arma::uword i = 0; i < n; ++i) out[i] = in[i] - log_normalizer;
    });
  }
  // dx = dy − softmax(x)·Σ dy per column, with softmax(x) = exp(y).
  void backward(const arma::Mat<T>& y, const arma::Mat<T>& dy, arma::Mat<T>& dx) const {
    const arma::uword n = y.n_rows;
    for (arma::uword j = 0; j < y.n_cols; ++j) {
      const T* p = y.colptr(j);
      const T* g = dy.colptr(j);
      T* d = dx.colptr(j);
      double total = 0;
      for (arma::uword i = 0; i < n; ++i) total += g[i];
      const T sum = T(total);
      for (arma::uword i = 0; i < n; ++i) d[i] = g[i] - std::exp(p[i]) * sum;
    }
  }
};

LAYERCACHE_INSTANTIATE_LAYER(ActivationLayer<Softmax>)
LAYERCACHE_INSTANTIATE_LAYER(ActivationLayer<LogSoftmax>)

}  // namespace layercache
