// Element-wise activations: for each layer its forward and backward math side by side; the
// loops, the cache and every check are ElementwiseLayer's (layers/elementwise.hpp).
//
// Piecewise formulas are written with the selects below instead of `c ? a : s * b`. GCC
// (under its default -ftrapping-math) does not turn a conditional multiplication into vector
// code, since that would evaluate it where the source does not; a select against 0 followed
// by unconditional arithmetic vectorizes in float and double, and gives the same values (up
// to the sign of a zero result):
//   v > 0 ? p : s·q   ==   if_positive(v, p) + s · if_not_positive(v, q)
// Forward passes split on v < 0, so that a NaN input stays NaN (as in PyTorch) instead of
// being taken for a negative number.
#include "layercache/layers/activations.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>

#include "../format_number.hpp"

namespace layercache {
namespace {

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

}  // namespace

namespace detail {

void throw_other_parameter(const char* name, double layer, double cache) {
  auto text = [](double v) {
    std::ostringstream os;
    os << v;
    return os.str();
  };
  throw CacheError(std::string("expected a cache made with ") + name + " = " + text(layer) +
                   " (this layer's), got one made with " + name + " = " + text(cache));
}

}  // namespace detail

// ----- ReLU -------------------------------------------------------------------------------

template <class T>
T ReLU::apply(T x) const {
  return if_not_negative(x, x);
}
template <class T>
T ReLU::input_gradient(T y, T dy) const {
  return if_positive(y, dy);
}

// ----- LeakyReLU --------------------------------------------------------------------------

LeakyReLU::LeakyReLU(LeakyReLUOptions options) : options_(options) {
  if (!(options.slope >= 0) || !std::isfinite(options.slope))
    throw ConfigError("LeakyReLU needs a finite slope ≥ 0, got " +
                      detail::format_number(options.slope) +
                      " (its cache keeps the output, whose sign must match the input's)");
}

template <class T>
T LeakyReLU::apply(T x) const {
  return if_not_negative(x, x) + T(options_.slope) * if_negative(x, x);
}
template <class T>
T LeakyReLU::input_gradient(T y, T dy) const {
  return if_positive(y, dy) + T(options_.slope) * if_not_positive(y, dy);
}

// ----- ELU --------------------------------------------------------------------------------

ELU::ELU(ELUOptions options) : options_(options) {
  if (!(options.alpha > 0) || !std::isfinite(options.alpha))
    throw ConfigError("ELU needs a finite alpha > 0, got " + detail::format_number(options.alpha) +
                      " (its cache keeps the output, whose sign must match the input's)");
}

template <class T>
T ELU::apply(T x) const {
  return if_not_negative(x, x) + T(options_.alpha) * std::expm1(if_negative(x, x));
}
// For x ≤ 0: d/dx α(eˣ − 1) = α·eˣ = y + α; y ≤ 0 exactly there because α > 0.
template <class T>
T ELU::input_gradient(T y, T dy) const {
  return if_positive(y, dy) + if_not_positive(y, dy) * (if_not_positive(y, y) + T(options_.alpha));
}

// ----- GELU -------------------------------------------------------------------------------

namespace {
// Exact: Φ(x) = ½·erfc(−x/√2), which stays accurate for large negative x where
// ½·(1 + erf(x/√2)) would cancel; φ(x) = exp(−x²/2)/√(2π).
constexpr double inv_sqrt2 = 0.70710678118654752440;
constexpr double inv_sqrt_2pi = 0.39894228040143267794;
// Tanh approximation: u = k·(x + c·x³).
constexpr double gelu_k = 0.79788456080286535588;  // √(2/π)
constexpr double gelu_c = 0.044715;
}  // namespace

template <class T>
T GELU::apply(T x) const {
  if (options_.tanh_approximation)
    return T(0.5) * x * (T(1) + std::tanh(T(gelu_k) * (x + T(gelu_c) * x * x * x)));
  return x * T(0.5) * std::erfc(-x * T(inv_sqrt2));
}
template <class T>
T GELU::input_gradient(T x, T dy) const {
  if (options_.tanh_approximation) {
    const T t = std::tanh(T(gelu_k) * (x + T(gelu_c) * x * x * x));
    const T du = T(gelu_k) * (T(1) + T(3) * T(gelu_c) * x * x);
    return dy * (T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t) * (T(1) + t) * du);
  }
  const T cdf = T(0.5) * std::erfc(-x * T(inv_sqrt2));
  const T pdf = T(inv_sqrt_2pi) * std::exp(T(-0.5) * x * x);
  return dy * (cdf + x * pdf);
}

// ----- Sigmoid ----------------------------------------------------------------------------

namespace {
// With e = exp(−|x|) ∈ (0, 1], nothing overflows: σ(x) = 1/(1 + e) for x ≥ 0, e/(1 + e) else.
template <class T>
T sigmoid(T x) {
  const T e = std::exp(-std::abs(x));
  return (if_not_negative(x, T(1)) + if_negative(x, e)) / (T(1) + e);
}
// log(1 + eˣ) = max(x, 0) + log(1 + e^−|x|): no overflow, and accurate for large |x|.
template <class T>
T softplus(T x) {
  return if_positive(x, x) + std::log1p(std::exp(-std::abs(x)));
}
}  // namespace

template <class T>
T Sigmoid::apply(T x) const {
  return sigmoid(x);
}
template <class T>
T Sigmoid::input_gradient(T y, T dy) const {
  return dy * y * (T(1) - y);
}

// ----- Tanh -------------------------------------------------------------------------------

template <class T>
T Tanh::apply(T x) const {
  return std::tanh(x);
}
// 1 − y² as (1 − y)(1 + y): accurate where |y| is close to 1.
template <class T>
T Tanh::input_gradient(T y, T dy) const {
  return dy * ((T(1) - y) * (T(1) + y));
}

// ----- SiLU -------------------------------------------------------------------------------

template <class T>
T SiLU::apply(T x) const {
  return x * sigmoid(x);
}
// d/dx x·σ(x) = σ + x·σ' = σ + x·σ(1 − σ)
template <class T>
T SiLU::input_gradient(T x, T dy) const {
  const T s = sigmoid(x);
  return dy * (s + x * s * (T(1) - s));
}

// ----- Softplus ---------------------------------------------------------------------------

template <class T>
T Softplus::apply(T x) const {
  return softplus(x);
}
template <class T>
T Softplus::input_gradient(T x, T dy) const {
  return dy * sigmoid(x);
}

// ----- SELU -------------------------------------------------------------------------------

template <class T>
T SELU::apply(T x) const {
  return T(scale) * (if_not_negative(x, x) + T(alpha) * std::expm1(if_negative(x, x)));
}
// For x ≤ 0: d/dx λα(eˣ − 1) = λα·eˣ = y + λα; y ≤ 0 exactly there.
template <class T>
T SELU::input_gradient(T y, T dy) const {
  return T(scale) * if_positive(y, dy) +
         if_not_positive(y, dy) * (if_not_positive(y, y) + T(scale * alpha));
}

// ----- Hardswish --------------------------------------------------------------------------

template <class T>
T Hardswish::apply(T x) const {
  return x * std::min(std::max(x + T(3), T(0)), T(6)) / T(6);
}
// The kinks at ±3 take the outer pieces' slopes (0 and 1), as PyTorch does at −3 and 3.
template <class T>
T Hardswish::input_gradient(T x, T dy) const {
  if (x <= T(-3)) return T(0);
  if (x >= T(3)) return dy;
  return dy * (T(2) * x + T(3)) / T(6);
}

// ----- Mish -------------------------------------------------------------------------------

template <class T>
T Mish::apply(T x) const {
  return x * std::tanh(softplus(x));
}
// With t = tanh(sp(x)): d/dx x·t = t + x·(1 − t²)·sp'(x), and sp'(x) = σ(x).
template <class T>
T Mish::input_gradient(T x, T dy) const {
  const T t = std::tanh(softplus(x));
  return dy * (t + x * sigmoid(x) * (T(1) - t) * (T(1) + t));
}

template class LayerImpl<ReLU, OneTensorCache>;
template class LayerImpl<LeakyReLU, OneTensorCache>;
template class LayerImpl<ELU, OneTensorCache>;
template class LayerImpl<GELU, OneTensorCache>;
template class LayerImpl<Sigmoid, OneTensorCache>;
template class LayerImpl<Tanh, OneTensorCache>;
template class LayerImpl<SiLU, OneTensorCache>;
template class LayerImpl<Softplus, OneTensorCache>;
template class LayerImpl<SELU, OneTensorCache>;
template class LayerImpl<Hardswish, OneTensorCache>;
template class LayerImpl<Mish, OneTensorCache>;

}  // namespace layercache
