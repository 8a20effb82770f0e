// Element-wise activations: ReLU, LeakyReLU, ELU, GELU, Sigmoid, Tanh, SiLU (Swish),
// Softplus, SELU, Hardswish, Mish. Each maps every
// entry y = f(x) of a batch of any shape, and backward gives dx = dy ⊙ f'(x), with f'
// written in terms of the one tensor the layer's cache keeps (ElementwiseLayer). The math of
// each is in src/layers/activations.cpp, forward and backward side by side; formulas:
// docs/layers.md.
#pragma once

#include "layercache/layers/elementwise.hpp"

namespace layercache {

/// Rectified linear unit. Keeps its output, which is also the next layer's input, so a Dense
/// after a ReLU shares that buffer instead of holding a copy.
///   forward:  y = max(x, 0)
///   backward: dx = dy where y > 0, else 0 (the derivative at x = 0 is taken as 0)
class ReLU : public ElementwiseLayer<ReLU> {
 public:
  /// The layer's kind.
  static constexpr const char* kind_name = "relu";
  /// Backward reads the output.
  static constexpr Keeps keeps = Keeps::output;
  /// y = max(x, 0); NaN stays NaN.
  template <class T>
  T apply(T x) const;
  /// dx = dy where y > 0, else 0.
  template <class T>
  T input_gradient(T y, T dy) const;
};

/// Options of LeakyReLU.
struct LeakyReLUOptions {
  /// Slope for negative inputs; must be ≥ 0 (the cache keeps the output, whose sign must
  /// tell the two branches apart).
  double slope = 0.01;
};

/// Leaky rectified linear unit with slope s (default 0.01). Keeps its output (y > 0 exactly
/// where x > 0) and records s, which its backward reads.
///   forward:  y = x if x > 0, else s·x
///   backward: dx = dy where y > 0, else s·dy
class LeakyReLU : public ElementwiseLayer<LeakyReLU> {
 public:
  /// The layer's kind.
  static constexpr const char* kind_name = "leaky_relu";
  /// Backward reads the output.
  static constexpr Keeps keeps = Keeps::output;
  /// The name of the hyper-parameter recorded in the cache.
  static constexpr const char* parameter_name = "slope";
  /// A leaky ReLU; throws ConfigError when the slope is negative or not finite.
  explicit LeakyReLU(LeakyReLUOptions options = {});
  /// The slope for negative inputs.
  double slope() const noexcept { return options_.slope; }
  /// The slope, recorded in the cache.
  double parameter() const noexcept { return options_.slope; }
  /// y = x if x > 0, else s·x.
  template <class T>
  T apply(T x) const;
  /// dx = dy where y > 0, else s·dy.
  template <class T>
  T input_gradient(T y, T dy) const;

 private:
  LeakyReLUOptions options_;
};

/// Options of ELU.
struct ELUOptions {
  /// Saturation value: y → −alpha as x → −∞; must be > 0.
  double alpha = 1.0;
};

/// Exponential linear unit with saturation α (default 1). Keeps its output (y < 0 exactly
/// where x < 0, since α > 0, and there the derivative α·eˣ equals y + α) and records α.
///   forward:  y = x if x > 0, else α·(eˣ − 1)
///   backward: dx = dy where y > 0, else dy·(y + α)
class ELU : public ElementwiseLayer<ELU> {
 public:
  /// The layer's kind.
  static constexpr const char* kind_name = "elu";
  /// Backward reads the output.
  static constexpr Keeps keeps = Keeps::output;
  /// The name of the hyper-parameter recorded in the cache.
  static constexpr const char* parameter_name = "alpha";
  /// An ELU; throws ConfigError unless alpha > 0.
  explicit ELU(ELUOptions options = {});
  /// The saturation value α.
  double alpha() const noexcept { return options_.alpha; }
  /// α, recorded in the cache.
  double parameter() const noexcept { return options_.alpha; }
  /// y = x if x > 0, else α·(eˣ − 1).
  template <class T>
  T apply(T x) const;
  /// dx = dy where y > 0, else dy·(y + α).
  template <class T>
  T input_gradient(T y, T dy) const;

 private:
  ELUOptions options_;
};

/// Options of GELU.
struct GELUOptions {
  /// Use the tanh approximation of Hendrycks & Gimpel instead of the exact erf form
  /// (PyTorch's approximate="tanh").
  bool tanh_approximation = false;
};

/// Gaussian error linear unit, exact by default: with Φ the standard normal distribution
/// function and φ its density,
///   forward:  y = x·Φ(x) = ½·x·(1 + erf(x/√2))
///   backward: dx = dy·(Φ(x) + x·φ(x))
/// With tanh_approximation, u = √(2/π)·(x + 0.044715·x³) and t = tanh(u):
///   forward:  y = ½·x·(1 + t)
///   backward: dx = dy·(½·(1 + t) + ½·x·(1 − t²)·√(2/π)·(1 + 3·0.044715·x²))
/// Keeps its input (the output is not monotonic) and records which form it computes.
class GELU : public ElementwiseLayer<GELU> {
 public:
  /// The layer's kind.
  static constexpr const char* kind_name = "gelu";
  /// Backward reads the input.
  static constexpr Keeps keeps = Keeps::input;
  /// The name of the hyper-parameter recorded in the cache.
  static constexpr const char* parameter_name = "tanh_approximation";
  /// A GELU, exact unless options.tanh_approximation.
  explicit GELU(GELUOptions options = {}) : options_(options) {}
  /// Whether the tanh approximation is used.
  bool tanh_approximation() const noexcept { return options_.tanh_approximation; }
  /// 1 with the tanh approximation, 0 exact; recorded in the cache.
  double parameter() const noexcept { return options_.tanh_approximation ? 1.0 : 0.0; }
  /// y = x·Φ(x), or its tanh approximation.
  template <class T>
  T apply(T x) const;
  /// dx = dy·(Φ(x) + x·φ(x)), or its tanh approximation's.
  template <class T>
  T input_gradient(T x, T dy) const;

 private:
  GELUOptions options_;
};

/// Logistic sigmoid, computed without overflow for inputs of either sign. Keeps its output.
///   forward:  y = 1 / (1 + e⁻ˣ)
///   backward: dx = dy·y·(1 − y)
class Sigmoid : public ElementwiseLayer<Sigmoid> {
 public:
  /// The layer's kind.
  static constexpr const char* kind_name = "sigmoid";
  /// Backward reads the output.
  static constexpr Keeps keeps = Keeps::output;
  /// y = 1 / (1 + e⁻ˣ).
  template <class T>
  T apply(T x) const;
  /// dx = dy·y·(1 − y).
  template <class T>
  T input_gradient(T y, T dy) const;
};

/// Hyperbolic tangent. Keeps its output.
///   forward:  y = tanh(x)
///   backward: dx = dy·(1 − y²)
class Tanh : public ElementwiseLayer<Tanh> {
 public:
  /// The layer's kind.
  static constexpr const char* kind_name = "tanh";
  /// Backward reads the output.
  static constexpr Keeps keeps = Keeps::output;
  /// y = tanh(x).
  template <class T>
  T apply(T x) const;
  /// dx = dy·(1 − y²).
  template <class T>
  T input_gradient(T y, T dy) const;
};

/// Sigmoid-weighted linear unit, also called Swish: with σ the logistic sigmoid,
///   forward:  y = x·σ(x)
///   backward: dx = dy·(σ(x) + x·σ(x)·(1 − σ(x)))
/// Keeps its input (the output is not monotonic).
class SiLU : public ElementwiseLayer<SiLU> {
 public:
  /// The layer's kind.
  static constexpr const char* kind_name = "silu";
  /// Backward reads the input.
  static constexpr Keeps keeps = Keeps::input;
  /// y = x·σ(x).
  template <class T>
  T apply(T x) const;
  /// dx = dy·(σ(x) + x·σ(x)·(1 − σ(x))).
  template <class T>
  T input_gradient(T x, T dy) const;
};

/// Swish is SiLU (Swish with β = 1).
using Swish = SiLU;

/// Softplus, a smooth ReLU, computed without overflow as max(x, 0) + log(1 + e^−|x|).
///   forward:  y = log(1 + eˣ)
///   backward: dx = dy·σ(x)
/// Keeps its input (σ(x) from y would lose precision where y is large).
class Softplus : public ElementwiseLayer<Softplus> {
 public:
  /// The layer's kind.
  static constexpr const char* kind_name = "softplus";
  /// Backward reads the input.
  static constexpr Keeps keeps = Keeps::input;
  /// y = log(1 + eˣ).
  template <class T>
  T apply(T x) const;
  /// dx = dy·σ(x).
  template <class T>
  T input_gradient(T x, T dy) const;
};

/// Scaled exponential linear unit (Klambauer et al.), with the fixed constants
/// λ = 1.0507009873554804934 and α = 1.6732632423543772848 that make it self-normalizing.
/// Keeps its output (y > 0 exactly where x > 0; for x ≤ 0 the derivative λ·α·eˣ is y + λ·α).
///   forward:  y = λ·x if x > 0, else λ·α·(eˣ − 1)
///   backward: dx = λ·dy where y > 0, else dy·(y + λ·α)
class SELU : public ElementwiseLayer<SELU> {
 public:
  /// The layer's kind.
  static constexpr const char* kind_name = "selu";
  /// Backward reads the output.
  static constexpr Keeps keeps = Keeps::output;
  /// λ.
  static constexpr double scale = 1.0507009873554804934193349852946;
  /// α.
  static constexpr double alpha = 1.6732632423543772848170429916717;
  /// y = λ·x if x > 0, else λ·α·(eˣ − 1).
  template <class T>
  T apply(T x) const;
  /// dx = λ·dy where y > 0, else dy·(y + λ·α).
  template <class T>
  T input_gradient(T y, T dy) const;
};

/// Hard swish (Howard et al., MobileNetV3), a piecewise quadratic SiLU:
///   forward:  y = 0 if x ≤ −3,  x·(x + 3)/6 if −3 < x < 3,  x if x ≥ 3
///   backward: dx = 0 if x ≤ −3,  dy·(2x + 3)/6 if −3 < x < 3,  dy if x ≥ 3
/// Keeps its input (the output is not monotonic).
class Hardswish : public ElementwiseLayer<Hardswish> {
 public:
  /// The layer's kind.
  static constexpr const char* kind_name = "hardswish";
  /// Backward reads the input.
  static constexpr Keeps keeps = Keeps::input;
  /// y = x·min(max(x + 3, 0), 6)/6.
  template <class T>
  T apply(T x) const;
  /// dx = dy·(2x + 3)/6 inside (−3, 3), dy above, 0 below.
  template <class T>
  T input_gradient(T x, T dy) const;
};

/// Mish (Misra), a self-gated softplus: with sp(x) = log(1 + eˣ) and σ the sigmoid,
///   forward:  y = x·tanh(sp(x))
///   backward: dx = dy·(tanh(sp(x)) + x·σ(x)·(1 − tanh²(sp(x))))
/// Keeps its input (the output is not monotonic).
class Mish : public ElementwiseLayer<Mish> {
 public:
  /// The layer's kind.
  static constexpr const char* kind_name = "mish";
  /// Backward reads the input.
  static constexpr Keeps keeps = Keeps::input;
  /// y = x·tanh(log(1 + eˣ)).
  template <class T>
  T apply(T x) const;
  /// dx = dy·(tanh(sp) + x·σ(x)·(1 − tanh²(sp))).
  template <class T>
  T input_gradient(T x, T dy) const;
};

// Compiled once in src/layers/activations.cpp.
extern template class LayerImpl<ReLU, OneTensorCache>;
extern template class LayerImpl<LeakyReLU, OneTensorCache>;
extern template class LayerImpl<ELU, OneTensorCache>;
extern template class LayerImpl<GELU, OneTensorCache>;
extern template class LayerImpl<Sigmoid, OneTensorCache>;
extern template class LayerImpl<Tanh, OneTensorCache>;
extern template class LayerImpl<SiLU, OneTensorCache>;
extern template class LayerImpl<Softplus, OneTensorCache>;
extern template class LayerImpl<SELU, OneTensorCache>;
extern template class LayerImpl<Hardswish, OneTensorCache>;
extern template class LayerImpl<Mish, OneTensorCache>;

}  // namespace layercache
