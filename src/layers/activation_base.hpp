// The one implementation of ActivationLayer (include/layercache/layers/activation_base.hpp):
// shape checks, buffer reuse, the cache and Needs::input, written once for every activation.
//
// A layer's .cpp supplies only its math, as a specialization of ActivationMath, then
// instantiates the layer:
//
//   template <class T>
//   struct ActivationMath<Tanh, T> {
//     using Cache = TanhCache<T>;                    // a named struct with field y (or x)
//     static constexpr Keeps keeps = Keeps::output;  // which tensor the cache holds
//     explicit ActivationMath(const Tanh&) {}        // reads the layer's options
//     void forward(const arma::Mat<T>& x, arma::Mat<T>& y) const;   // y sized like x
//     void backward(const arma::Mat<T>& kept, const arma::Mat<T>& dy,
//                   arma::Mat<T>& dx) const;                         // dx sized like dy
//   };
//   LAYERCACHE_INSTANTIATE_LAYER(ActivationLayer<Tanh>)
//
// forward and backward must be alias-safe (y may be x in infer) and allocate nothing.
//
// An activation with a hyper-parameter its backward formula depends on (LeakyReLU's slope)
// also defines record(Cache&), which writes it into the cache in forward, and
// check(const Cache&), which throws CacheError in backward when the cache was made by a
// layer with another value.
#pragma once

#include <string>

#include "../split_work.hpp"
#include "layer_instantiation.hpp"
#include "layercache/layers/activation_base.hpp"

namespace layercache {

/// Which tensor an activation's cache keeps: its input x (field `x`) or its output y
/// (field `y`).
enum class Keeps { input, output };

/// The math of activation L in element type T; specialized by each activation's .cpp.
template <class L, class T>
struct ActivationMath;

namespace activation_detail {

// out[i] = f(x[i]) for every entry; out is already sized like x (and may be x).
template <class T, class F>
void map_entries(const arma::Mat<T>& x, arma::Mat<T>& out, F f) {
  const T* in = x.memptr();
  T* o = out.memptr();
  const arma::uword n = x.n_elem;
  for (arma::uword i = 0; i < n; ++i) o[i] = f(in[i]);
}

// out[i] = f(a[i], b[i]) for every entry; out is already sized like a and b.
template <class T, class F>
void map_entries(const arma::Mat<T>& a, const arma::Mat<T>& b, arma::Mat<T>& out, F f) {
  const T* pa = a.memptr();
  const T* pb = b.memptr();
  T* o = out.memptr();
  const arma::uword n = a.n_elem;
  for (arma::uword i = 0; i < n; ++i) o[i] = f(pa[i], pb[i]);
}

// Piecewise formulas are written with the selects below instead of `c ? a : s * b`. GCC
// (under its default -ftrapping-math) does not turn a conditional multiplication into vector
// code, since that would evaluate it where the source does not; a select against 0 followed
// by unconditional arithmetic vectorizes in float and double, and gives the same values (up
// to the sign of a zero result):
//   v > 0 ? p : s·q   ==   if_positive(v, p) + s · if_not_positive(v, q)
// Forward passes split on v < 0, so that a NaN input stays NaN (as in PyTorch) instead of
// being taken for a negative number.

// p where v > 0, else 0.
template <class T>
T if_positive(T v, T p) {
  return v > T(0) ? p : T(0);
}

// q where v ≤ 0 or v is NaN, else 0.
template <class T>
T if_not_positive(T v, T q) {
  return v > T(0) ? T(0) : q;
}

// q where v < 0, else 0.
template <class T>
T if_negative(T v, T q) {
  return v < T(0) ? q : T(0);
}

// p where v ≥ 0 or v is NaN, else 0.
template <class T>
T if_not_negative(T v, T p) {
  return v < T(0) ? T(0) : p;
}

// "(rows × cols)"; built by appending (GCC 12 warns falsely about "(" + std::string).
inline std::string dims(std::size_t rows, std::size_t cols) {
  std::string s = "(";
  s += std::to_string(rows);
  s += " × ";
  s += std::to_string(cols);
  s += ")";
  return s;
}

// The cache as the layer's own type; the kind string is built only on the error path.
template <class C, class L>
const C& own_cache(const Cache& cache, const L& layer) {
  if (const auto* c = dynamic_cast<const C*>(&cache)) return *c;
  return cache_as<C>(cache, layer.kind().c_str());  // throws CacheError naming both kinds
}

// Throws ShapeError unless dy is (rows × cols), the shape of the layer's output.
template <class T>
void check_dy(const arma::Mat<T>& dy, std::size_t rows, std::size_t cols) {
  if (dy.n_rows != rows || dy.n_cols != cols)
    throw ShapeError("expected dy " + dims(rows, cols) +
                     " (the shape of this layer's output), got " + dims(dy.n_rows, dy.n_cols));
}

// Calls f(a, b, c) with views of the same columns of a, b and c (c written), split across
// the executor's threads in whole columns when the matrices are large enough, else once
// with the whole matrices. f must not throw (the element-wise math does not).
template <class T, class F>
void by_columns(Executor* executor, const arma::Mat<T>& a, const arma::Mat<T>& b,
                arma::Mat<T>& c, F f) {
  Executor* split = detail::splitting(executor, double(c.n_elem), detail::min_split_elements);
  if (!split) {
    f(a, b, c);
    return;
  }
  auto task = [&](std::size_t i, std::size_t tasks) noexcept {
    const detail::Share cols(c.n_cols, 1, i, tasks);
    if (cols.begin == cols.end) return;
    const std::size_t n = cols.end - cols.begin;
    const auto view = [&](const arma::Mat<T>& m) {
      return arma::Mat<T>(const_cast<T*>(m.colptr(cols.begin)), m.n_rows, n, false, true);
    };
    const arma::Mat<T> av = view(a), bv = view(b);
    arma::Mat<T> cv = view(c);
    f(av, bv, cv);
  };
  detail::run_on(*split, task);
}

}  // namespace activation_detail

template <class D>
template <class T>
void ActivationLayer<D>::forward_t(const Tree<T>&, const Tree<T>&, const ConstBuffer<T>& x,
                                   const Shape& x_shape, const Context& ctx,
                                   ForwardResult<T>& out) const {
  using Math = ActivationMath<D, T>;
  check_rows(x->n_rows, x_shape);
  const Math math(derived());
  activation_detail::by_columns(
      ctx.executor, *x, *x, out.write_output(x->n_rows, x->n_cols),
      [&](const arma::Mat<T>& xs, const arma::Mat<T>&, arma::Mat<T>& ys) { math.forward(xs, ys); });
  out.shape = x_shape;
  auto& cache = out.template reuse_cache<typename Math::Cache>();
  if constexpr (requires(const Math& m, typename Math::Cache& c) { m.record(c); })
    Math(derived()).record(cache);
  if constexpr (Math::keeps == Keeps::output)
    cache.y = out.output;  // shared with the next layer, which reads the same buffer
  else
    cache.x = x;  // shared with the previous layer's output
}

template <class D>
template <class T>
void ActivationLayer<D>::backward_t(const Tree<T>&, const Cache& cache_base,
                                    const arma::Mat<T>& dy, const Needs& needs,
                                    BackwardResult<T>& out) const {
  using Math = ActivationMath<D, T>;
  const auto& cache = activation_detail::own_cache<typename Math::Cache>(cache_base, derived());
  if constexpr (requires(const Math& m, const typename Math::Cache& c) { m.check(c); })
    Math(derived()).check(cache);
  const ConstBuffer<T>* kept;
  if constexpr (Math::keeps == Keeps::output)
    kept = &cache.y;
  else
    kept = &cache.x;
  if (!*kept)
    throw CacheError(std::string("the ") + cache.kind() + " cache holds no " +
                     (Math::keeps == Keeps::output ? "output" : "input") +
                     "; pass backward the cache that forward returned");
  activation_detail::check_dy(dy, (*kept)->n_rows, (*kept)->n_cols);
  if (!needs.input) {
    out.dx.reset();
    return;
  }
  out.dx.set_size(dy.n_rows, dy.n_cols);
  const Math math(derived());
  activation_detail::by_columns(needs.executor, **kept, dy, out.dx,
                                [&](const arma::Mat<T>& ks, const arma::Mat<T>& dys,
                                    arma::Mat<T>& dxs) { math.backward(ks, dys, dxs); });
}

template <class D>
template <class T>
void ActivationLayer<D>::infer_t(const Tree<T>&, const Tree<T>&, const arma::Mat<T>& x,
                                 const Shape& x_shape, arma::Mat<T>& y) const {
  check_rows(x.n_rows, x_shape);
  y.set_size(x.n_rows, x.n_cols);
  ActivationMath<D, T>(derived()).forward(x, y);
}

}  // namespace layercache
