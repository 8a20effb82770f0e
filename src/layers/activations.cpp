// Element-wise activations: for each layer its forward and backward math side by side; the
// contract (shapes, cache, buffer reuse) is shared in activation_base.hpp.
#include "layercache/layers/activations.hpp"

#include <cmath>
#include <sstream>
#include <string>

#include "activation_base.hpp"
#include "../format_number.hpp"

namespace layercache {

using activation_detail::if_negative;
using activation_detail::if_not_negative;
using activation_detail::if_not_positive;
using activation_detail::if_positive;
using activation_detail::map_entries;

namespace {

// Throws CacheError unless the hyper-parameter `name` recorded in a cache equals the layer's.
void check_recorded(const char* name, double layer, double cache) {
  if (layer == cache) return;
  auto text = [](double v) {
    std::ostringstream os;
    os << v;
    return os.str();
  };
  throw CacheError(std::string("expected a cache made with ") + name + " = " + text(layer) +
                   " (this layer's), got one made with " + name + " = " + text(cache));
}

}  // namespace

// Piecewise formulas use the branch-free selects of activation_base.hpp, so that their loops
// vectorize; the forward passes keep NaN as NaN.

LeakyReLU::LeakyReLU(LeakyReLUOptions options) : options_(options) {
  if (!(options.slope >= 0) || !std::isfinite(options.slope))
    throw ConfigError("LeakyReLU needs a finite slope ≥ 0, got " + detail::format_number(options.slope) +
                      " (its cache keeps the output, whose sign must match the input's)");
}

ELU::ELU(ELUOptions options) : options_(options) {
  if (!(options.alpha > 0) || !std::isfinite(options.alpha))
    throw ConfigError("ELU needs a finite alpha > 0, got " + detail::format_number(options.alpha) +
                      " (its cache keeps the output, whose sign must match the input's)");
}

template <class T>
struct ActivationMath<ReLU, T> {
  using Cache = ReLUCache<T>;
  static constexpr Keeps keeps = Keeps::output;
  explicit ActivationMath(const ReLU&) {}

  void forward(const arma::Mat<T>& x, arma::Mat<T>& y) const {
    map_entries(x, y, [](T v) { return if_not_negative(v, v); });
  }
  void backward(const arma::Mat<T>& y, const arma::Mat<T>& dy, arma::Mat<T>& dx) const {
    map_entries(y, dy, dx, [](T out, T g) { return if_positive(out, g); });
  }
};

template <class T>
struct ActivationMath<LeakyReLU, T> {
  using Cache = LeakyReLUCache<T>;
  static constexpr Keeps keeps = Keeps::output;
  T slope;
  explicit ActivationMath(const LeakyReLU& layer) : slope(T(layer.slope())) {}

  void record(Cache& cache) const { cache.slope = double(slope); }
  void check(const Cache& cache) const { check_recorded("slope", double(slope), cache.slope); }

  void forward(const arma::Mat<T>& x, arma::Mat<T>& y) const {
    const T s = slope;
    map_entries(x, y, [s](T v) { return if_not_negative(v, v) + s * if_negative(v, v); });
  }
  void backward(const arma::Mat<T>& y, const arma::Mat<T>& dy, arma::Mat<T>& dx) const {
    const T s = slope;
    map_entries(y, dy, dx,
                [s](T out, T g) { return if_positive(out, g) + s * if_not_positive(out, g); });
  }
};

template <class T>
struct ActivationMath<ELU, T> {
  using Cache = ELUCache<T>;
  static constexpr Keeps keeps = Keeps::output;
  T alpha;
  explicit ActivationMath(const ELU& layer) : alpha(T(layer.alpha())) {}

  void record(Cache& cache) const { cache.alpha = double(alpha); }
  void check(const Cache& cache) const { check_recorded("alpha", double(alpha), cache.alpha); }

  void forward(const arma::Mat<T>& x, arma::Mat<T>& y) const {
    const T a = alpha;
    map_entries(x, y,
                [a](T v) { return if_not_negative(v, v) + a * std::expm1(if_negative(v, v)); });
  }
  // For x ≤ 0: d/dx α(eˣ − 1) = α·eˣ = y + α; y ≤ 0 exactly there because α > 0.
  void backward(const arma::Mat<T>& y, const arma::Mat<T>& dy, arma::Mat<T>& dx) const {
    const T a = alpha;
    map_entries(y, dy, dx, [a](T out, T g) {
      return if_positive(out, g) + if_not_positive(out, g) * (if_not_positive(out, out) + a);
    });
  }
};

template <class T>
struct ActivationMath<GELU, T> {
  using Cache = GELUCache<T>;
  static constexpr Keeps keeps = Keeps::input;
  bool tanh_approximation;
  explicit ActivationMath(const GELU& layer) : tanh_approximation(layer.tanh_approximation()) {}

  void record(Cache& cache) const { cache.tanh_approximation = tanh_approximation; }
  void check(const Cache& cache) const {
    check_recorded("tanh_approximation", tanh_approximation, cache.tanh_approximation);
  }

  // Exact: Φ(x) = ½·erfc(−x/√2), which stays accurate for large negative x where
  // ½·(1 + erf(x/√2)) would cancel; φ(x) = exp(−x²/2)/√(2π).
  static constexpr T inv_sqrt2 = T(0.70710678118654752440);
  static constexpr T inv_sqrt_2pi = T(0.39894228040143267794);
  // Tanh approximation: u = k·(x + c·x³).
  static constexpr T k = T(0.79788456080286535588);  // √(2/π)
  static constexpr T c = T(0.044715);

  void forward(const arma::Mat<T>& x, arma::Mat<T>& y) const {
    if (tanh_approximation)
      map_entries(x, y,
                  [](T v) { return T(0.5) * v * (T(1) + std::tanh(k * (v + c * v * v * v))); });
    else
      map_entries(x, y, [](T v) { return v * T(0.5) * std::erfc(-v * inv_sqrt2); });
  }
  void backward(const arma::Mat<T>& x, const arma::Mat<T>& dy, arma::Mat<T>& dx) const {
    if (tanh_approximation)
      map_entries(x, dy, dx, [](T v, T g) {
        const T t = std::tanh(k * (v + c * v * v * v));
        const T du = k * (T(1) + T(3) * c * v * v);
        return g * (T(0.5) * (T(1) + t) + T(0.5) * v * (T(1) - t) * (T(1) + t) * du);
      });
    else
      map_entries(x, dy, dx, [](T v, T g) {
        const T cdf = T(0.5) * std::erfc(-v * inv_sqrt2);
        const T pdf = inv_sqrt_2pi * std::exp(T(-0.5) * v * v);
        return g * (cdf + v * pdf);
      });
  }
};

template <class T>
struct ActivationMath<Sigmoid, T> {
  using Cache = SigmoidCache<T>;
  static constexpr Keeps keeps = Keeps::output;
  explicit ActivationMath(const Sigmoid&) {}

  // With e = exp(−|x|) ∈ (0, 1], nothing overflows: y = 1/(1 + e) for x ≥ 0, e/(1 + e) else.
  void forward(const arma::Mat<T>& x, arma::Mat<T>& y) const {
    map_entries(x, y, [](T v) {
      const T e = std::exp(-std::abs(v));
      return (if_not_negative(v, T(1)) + if_negative(v, e)) / (T(1) + e);
    });
  }
  void backward(const arma::Mat<T>& y, const arma::Mat<T>& dy, arma::Mat<T>& dx) const {
    map_entries(y, dy, dx, [](T out, T g) { return g * out * (T(1) - out); });
  }
};

template <class T>
struct ActivationMath<Tanh, T> {
  using Cache = TanhCache<T>;
  static constexpr Keeps keeps = Keeps::output;
  explicit ActivationMath(const Tanh&) {}

  void forward(const arma::Mat<T>& x, arma::Mat<T>& y) const {
    map_entries(x, y, [](T v) { return std::tanh(v); });
  }
  // 1 − y² as (1 − y)(1 + y): accurate where |y| is close to 1.
  void backward(const arma::Mat<T>& y, const arma::Mat<T>& dy, arma::Mat<T>& dx) const {
    map_entries(y, dy, dx, [](T out, T g) { return g * ((T(1) - out) * (T(1) + out)); });
  }
};

LAYERCACHE_INSTANTIATE_LAYER(ActivationLayer<ReLU>)
LAYERCACHE_INSTANTIATE_LAYER(ActivationLayer<LeakyReLU>)
LAYERCACHE_INSTANTIATE_LAYER(ActivationLayer<ELU>)
LAYERCACHE_INSTANTIATE_LAYER(ActivationLayer<GELU>)
LAYERCACHE_INSTANTIATE_LAYER(ActivationLayer<Sigmoid>)
LAYERCACHE_INSTANTIATE_LAYER(ActivationLayer<Tanh>)

}  // namespace layercache
