// Element-wise activations: ReLU, LeakyReLU, ELU, GELU, Sigmoid, Tanh. Each maps every
// entry y = f(x) of a batch of any shape, and backward gives dx = dy ⊙ f'(x), with f'
// written in terms of the one tensor the layer's cache keeps. Formulas: docs/layers.md.
#pragma once

#include <cstddef>
#include <functional>

#include "layercache/layers/activation_base.hpp"

namespace layercache {

// ----- ReLU -------------------------------------------------------------------------------

/// What ReLU keeps for backward: its output, which is also the next layer's input, so a
/// Dense after a ReLU shares this buffer instead of holding a copy.
template <class T>
struct ReLUCache : Cache {
  ConstBuffer<T> y;  ///< output (n × batch), n = the per-sample size

  const char* kind() const noexcept override { return "relu"; }
  void for_each_buffer(const std::function<void(const void*, std::size_t)>& f) const override {
    visit_buffer(y, f);
  }
};

/// Rectified linear unit.
///   forward:  y = max(x, 0)
///   backward: dx = dy where y > 0, else 0 (the derivative at x = 0 is taken as 0)
class ReLU : public ActivationLayer<ReLU> {
 public:
  std::string kind() const override { return "relu"; }
};

// ----- LeakyReLU --------------------------------------------------------------------------

/// Options of LeakyReLU.
struct LeakyReLUOptions {
  /// Slope for negative inputs; must be ≥ 0 (the cache keeps the output, whose sign must
  /// tell the two branches apart).
  double slope = 0.01;
};

/// What LeakyReLU keeps for backward: its output (y > 0 exactly where x > 0).
template <class T>
struct LeakyReLUCache : Cache {
  ConstBuffer<T> y;  ///< output (n × batch)
  double slope = 0;  ///< the slope of the layer that made it (backward checks it)

  const char* kind() const noexcept override { return "leaky_relu"; }
  void for_each_buffer(const std::function<void(const void*, std::size_t)>& f) const override {
    visit_buffer(y, f);
  }
};

/// Leaky rectified linear unit with slope s (default 0.01).
///   forward:  y = x if x > 0, else s·x
///   backward: dx = dy where y > 0, else s·dy
class LeakyReLU : public ActivationLayer<LeakyReLU> {
 public:
  /// A leaky ReLU; throws ConfigError when the slope is negative or not finite.
  explicit LeakyReLU(LeakyReLUOptions options = {});

  std::string kind() const override { return "leaky_relu"; }
  /// The slope for negative inputs.
  double slope() const noexcept { return options_.slope; }

 private:
  LeakyReLUOptions options_;
};

// ----- ELU --------------------------------------------------------------------------------

/// Options of ELU.
struct ELUOptions {
  /// Saturation value: y → −alpha as x → −∞; must be > 0.
  double alpha = 1.0;
};

/// What ELU keeps for backward: its output (y < 0 exactly where x < 0, since alpha > 0, and
/// there the derivative alpha·eˣ equals y + alpha).
template <class T>
struct ELUCache : Cache {
  ConstBuffer<T> y;  ///< output (n × batch)
  double alpha = 0;  ///< the alpha of the layer that made it (backward checks it)

  const char* kind() const noexcept override { return "elu"; }
  void for_each_buffer(const std::function<void(const void*, std::size_t)>& f) const override {
    visit_buffer(y, f);
  }
};

/// Exponential linear unit with saturation α (default 1).
///   forward:  y = x if x > 0, else α·(eˣ − 1)
///   backward: dx = dy where y > 0, else dy·(y + α)
class ELU : public ActivationLayer<ELU> {
 public:
  /// An ELU; throws ConfigError unless alpha > 0.
  explicit ELU(ELUOptions options = {});

  std::string kind() const override { return "elu"; }
  /// The saturation value α.
  double alpha() const noexcept { return options_.alpha; }

 private:
  ELUOptions options_;
};

// ----- GELU -------------------------------------------------------------------------------

/// Options of GELU.
struct GELUOptions {
  /// Use the tanh approximation of Hendrycks & Gimpel instead of the exact erf form
  /// (PyTorch's approximate="tanh").
  bool tanh_approximation = false;
};

/// What GELU keeps for backward: its input (shared with the previous layer's output; the
/// derivative cannot be recovered from the output, which is not monotonic).
template <class T>
struct GELUCache : Cache {
  ConstBuffer<T> x;  ///< input (n × batch)
  bool tanh_approximation = false;  ///< the form of the layer that made it (backward checks it)

  const char* kind() const noexcept override { return "gelu"; }
  void for_each_buffer(const std::function<void(const void*, std::size_t)>& f) const override {
    visit_buffer(x, f);
  }
};

/// Gaussian error linear unit, exact by default: with Φ the standard normal distribution
/// function and φ its density,
///   forward:  y = x·Φ(x) = ½·x·(1 + erf(x/√2))
///   backward: dx = dy·(Φ(x) + x·φ(x))
/// With tanh_approximation, u = √(2/π)·(x + 0.044715·x³) and t = tanh(u):
///   forward:  y = ½·x·(1 + t)
///   backward: dx = dy·(½·(1 + t) + ½·x·(1 − t²)·√(2/π)·(1 + 3·0.044715·x²))
class GELU : public ActivationLayer<GELU> {
 public:
  /// A GELU, exact unless options.tanh_approximation.
  explicit GELU(GELUOptions options = {}) : options_(options) {}

  std::string kind() const override { return "gelu"; }
  /// Whether the tanh approximation is used.
  bool tanh_approximation() const noexcept { return options_.tanh_approximation; }

 private:
  GELUOptions options_;
};

// ----- Sigmoid ----------------------------------------------------------------------------

/// What Sigmoid keeps for backward: its output.
template <class T>
struct SigmoidCache : Cache {
  ConstBuffer<T> y;  ///< output (n × batch)

  const char* kind() const noexcept override { return "sigmoid"; }
  void for_each_buffer(const std::function<void(const void*, std::size_t)>& f) const override {
    visit_buffer(y, f);
  }
};

/// Logistic sigmoid, computed without overflow for inputs of either sign.
///   forward:  y = 1 / (1 + e⁻ˣ)
///   backward: dx = dy·y·(1 − y)
class Sigmoid : public ActivationLayer<Sigmoid> {
 public:
  std::string kind() const override { return "sigmoid"; }
};

// ----- Tanh -------------------------------------------------------------------------------

/// What Tanh keeps for backward: its output.
template <class T>
struct TanhCache : Cache {
  ConstBuffer<T> y;  ///< output (n × batch)

  const char* kind() const noexcept override { return "tanh"; }
  void for_each_buffer(const std::function<void(const void*, std::size_t)>& f) const override {
    visit_buffer(y, f);
  }
};

/// Hyperbolic tangent.
///   forward:  y = tanh(x)
///   backward: dx = dy·(1 − y²)
class Tanh : public ActivationLayer<Tanh> {
 public:
  std::string kind() const override { return "tanh"; }
};

}  // namespace layercache
