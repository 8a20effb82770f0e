// Initializers (docs/initializers.md): functions that fill a freshly declared tensor, drawing
// only from the explicit Rng. They sit outside the layers: a layer declares its tensors (TensorSpec,
// with fans and a role), and Layer::init asks the initializer to fill each weight. Biases
// and shifts start at zero and scales at one, whatever the initializer.
//
// Values are drawn in double and converted, so float and double params from the same seed
// agree to float rounding.
#pragma once

#include <armadillo>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "layercache/layer.hpp"
#include "layercache/rng.hpp"

namespace layercache {

/// A named rule that fills one weight tensor: fill(out, spec, rng). `out` is already sized
/// (spec.rows × spec.cols). Any callable with that signature becomes an initializer.
class Initializer {
 public:
  /// The signature of a fill rule.
  using Fill = std::function<void(arma::mat& out, const TensorSpec& spec, Rng& rng)>;

  /// A named fill rule.
  Initializer(std::string name, Fill fill);
  /// Any callable with the Fill signature, named "custom".
  template <class F, class = std::enable_if_t<std::is_invocable_v<F&, arma::mat&, const TensorSpec&, Rng&>>>
  Initializer(F fill)  // NOLINT(google-explicit-constructor): a lambda is an initializer
      : Initializer("custom", Fill(std::move(fill))) {}

  /// The initializer called `name` (e.g. "he_normal"); throws ConfigError listing the
  /// valid names when unknown.
  static Initializer by_name(std::string_view name);
  /// The names by_name accepts.
  static std::vector<std::string> names();

  /// Fills `out` (already sized like the spec).
  void operator()(arma::mat& out, const TensorSpec& spec, Rng& rng) const { fill_(out, spec, rng); }
  /// The initializer's name.
  const std::string& name() const noexcept { return name_; }

 private:
  std::string name_;
  Fill fill_;
};

/// Glorot/Xavier uniform: U(-a, a), a = gain · sqrt(6 / (fan_in + fan_out)); gain finite, > 0.
Initializer xavier_uniform(double gain = 1.0);
/// Glorot/Xavier normal: N(0, σ²), σ = gain · sqrt(2 / (fan_in + fan_out)); gain finite, > 0.
Initializer xavier_normal(double gain = 1.0);
/// He/Kaiming uniform (for ReLU): U(-a, a), a = sqrt(6 / fan_in).
Initializer he_uniform();
/// He/Kaiming normal (for ReLU): N(0, σ²), σ = sqrt(2 / fan_in).
Initializer he_normal();
/// LeCun normal (for SELU/tanh): N(0, σ²), σ = sqrt(1 / fan_in).
Initializer lecun_normal();
/// LeCun uniform: U(-a, a), a = sqrt(3 / fan_in).
Initializer lecun_uniform();
/// All zeros.
Initializer zeros();
/// Every entry equal to `value` (finite).
Initializer constant(double value);
/// A (semi-)orthogonal matrix scaled by `gain` (finite, > 0; QR of a Gaussian matrix,
/// sign-corrected).
Initializer orthogonal(double gain = 1.0);

}  // namespace layercache
