// Checks for unit-testing a layer (or a whole network) in isolation, independent of any test
// framework: a numerical gradient check and checks of the cache contract. Results are plain
// values with a readable report(); testing_boost.hpp adapts them to Boost.Test.
//
// Gradient check: in double, with a fixed random projection r, the scalar L = Σ r ⊙ y is
// differentiated numerically by the four-point central difference
//   dL/dv ≈ (−L(v+2h) + 8 L(v+h) − 8 L(v−h) + L(v−2h)) / 12h        (error O(h⁴))
// for every entry v of the input and of every parameter tensor, and compared with backward's
// dx and grads given dy = r. The relative error of one entry is
//   |a − n| / max(|a| + |n|, floor)
// (a analytic, n numeric); the floor keeps entries that are zero in exact arithmetic from
// dividing round-off by round-off. A NaN on either side counts as an infinite error. The
// worst entry is reported by tensor path.
//
// State and mode: every check runs the layer with the state its init_state makes (or the
// state given), in the mode of GradCheckOptions::mode (training by default; a layer whose
// forward depends on the mode, such as BatchNorm or Dropout, is checked in both). Forward
// draws from a stream seeded afresh for every evaluation, so a layer that draws (Dropout)
// sees the same draws each time.
#pragma once

#include <armadillo>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "layercache/layer.hpp"

namespace layercache::testing {

/// Settings of check_gradients.
struct GradCheckOptions {
  /// Number of samples (columns) in the random input batch.
  std::size_t batch = 3;
  /// Seed for params, input and projection.
  std::uint64_t seed = 7;
  /// Finite-difference step h.
  double step = 1e-4;
  /// Largest accepted relative error.
  double tolerance = 1e-6;
  /// Floor of the relative error's denominator.
  double floor = 1e-6;
  /// Check dx (turn off for layers whose input is not differentiable, e.g. indices).
  bool check_input = true;
  /// Input entries are drawn from N(0, input_scale²).
  double input_scale = 1.0;
  /// Keep input entries at least this far from zero (for layers with a kink at zero,
  /// such as ReLU, whose derivative a finite difference cannot see across the kink).
  double input_margin = 0.0;
  /// The mode of every forward call of the checks (Mode::infer checks the forward that uses
  /// running statistics and draws nothing).
  Mode mode = Mode::train;
  /// When positive, input entries are whole numbers drawn uniformly from [0, integer_inputs)
  /// (indices for an Embedding; turn check_input off with it).
  std::size_t integer_inputs = 0;
  /// For sequence layers: the real steps of each sample (Context::lengths), one per column
  /// of the batch; empty when every sample has all its steps. The checks run with these
  /// lengths in every forward's context, and compare forward in infer mode (not infer,
  /// which has no context) with training forward.
  arma::uvec lengths;
};

/// One compared entry.
struct GradCheckEntry {
  /// "input" or the parameter path ("dense1/weight").
  std::string path;
  /// Linear (column-major) index within the tensor.
  std::size_t index = 0;
  /// Gradient from backward.
  double analytic = 0;
  /// Gradient from finite differences.
  double numeric = 0;
  /// |analytic − numeric| / max(|analytic| + |numeric|, floor).
  double relative_error = 0;
};

/// Outcome of a gradient check.
struct GradCheckResult {
  /// True when every entry is within tolerance.
  bool passed = true;
  /// The entry with the largest relative error.
  GradCheckEntry worst;
  /// Largest relative error per tensor path ("input" first).
  std::vector<GradCheckEntry> worst_per_tensor;
  /// Number of entries compared.
  std::size_t n_checked = 0;
  /// The tolerance used.
  double tolerance = 0;
  /// A readable summary naming the worst entry.
  std::string report() const;
};

/// Gradient check of `layer` on a random input of per-sample shape `input_shape`, with
/// params from layer.init (Xavier normal weights; biases and other tensors jittered so
/// that no gradient term is trivially zero) and the state from layer.init_state.
GradCheckResult check_gradients(const Layer& layer, const Shape& input_shape,
                                const GradCheckOptions& options = {});
/// Gradient check with given params and input (double), and the state from init_state.
GradCheckResult check_gradients(const Layer& layer, const Tree<double>& params,
                                const arma::mat& x, const Shape& input_shape,
                                const GradCheckOptions& options = {});
/// Gradient check with given params, state and input (double).
GradCheckResult check_gradients(const Layer& layer, const Tree<double>& params,
                                const Tree<double>& state, const arma::mat& x,
                                const Shape& input_shape, const GradCheckOptions& options = {});

/// Outcome of the cache-contract and float/double checks.
struct ContractResult {
  /// True when no check failed.
  bool passed = true;
  /// One sentence per failed check.
  std::vector<std::string> failures;
  /// Names of the checks that ran.
  std::vector<std::string> checks;
  /// A readable summary.
  std::string report() const;
};

/// Checks the cache contract of `layer` (docs/contract.md) on a random batch, with the state
/// from init_state and forward in options.mode:
/// - the output has the shape output_shape() predicts;
/// - forward twice gives the same output, bit for bit, and a layer that draws from the rng
///   draws the same numbers from the same seed;
/// - a training forward returns new state shaped like state_specs (the tree init_state
///   makes), and a forward in infer mode returns none and draws nothing (it runs without
///   an rng);
/// - backward leaves the cache unchanged, and twice gives the same gradients;
/// - backward reads only its cache: after a forward on another batch, the first batch's
///   cache gives the same gradients (a layer keeping values in itself fails);
/// - infer equals forward's output in infer mode;
/// - results written into reused buffers (output, new state, gradients) equal fresh
///   results, bit for bit;
/// - backward honours Needs: dx is empty when Needs::input is false, and with every tensor
///   frozen no parameter gradient is computed (each stays empty), the rest unchanged;
/// - a cache of another kind is rejected with CacheError;
/// - an input whose rows contradict the shape the layer is told (input_shape) is rejected
///   with ShapeError by the layer's own forward_into.
ContractResult check_cache_contract(const Layer& layer, const Shape& input_shape,
                                    const GradCheckOptions& options = {});

/// Checks that the float forward agrees with the double forward: max |y_f − y_d| / max |y_d|
/// ≤ tolerance, with the same params (rounded to float), state and input, in options.mode.
ContractResult check_float_matches_double(const Layer& layer, const Shape& input_shape,
                                          double tolerance = 1e-5,
                                          const GradCheckOptions& options = {});

}  // namespace layercache::testing
