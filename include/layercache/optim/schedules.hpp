// Schedules: a value (usually a learning rate) as a function of the step, with a name.
//
// The step is the number of updates already applied (0 for the first update), read from the
// "count" entry of the optimizer state, so a resumed run continues the schedule exactly.
// A Schedule converts implicitly from a number, so every `learning_rate` option accepts both:
//   adam({.learning_rate = 1e-3})
//   adam({.learning_rate = cosine_decay({.peak_value = 1e-3, .warmup_steps = 500,
//                                        .decay_steps = 10000})})
// Reduce-on-plateau depends on a monitored metric, not on the step, so it is a transform
// (reduce_on_plateau in optim/transforms.hpp), not a Schedule.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace layercache {

/// A named function step → value. Cheap to call; copying copies the function.
class Schedule {
 public:
  /// The signature of a schedule: the value at `step` (0-based count of applied updates).
  using Function = std::function<double(std::int64_t step)>;

  /// The constant schedule `value` (so a plain number is accepted wherever a Schedule is).
  Schedule(double value);  // NOLINT(google-explicit-constructor): `.learning_rate = 1e-3`
  /// A named schedule from any callable; throws ConfigError when `function` is empty.
  Schedule(std::string name, Function function);

  /// The value at `step`.
  double operator()(std::int64_t step) const { return function_(step); }
  /// A description with the parameters, e.g. "step_decay(initial=0.1, gamma=0.5, every=100)".
  const std::string& name() const noexcept { return name_; }

 private:
  std::string name_;
  Function function_;
};

/// Options of step_decay.
struct StepDecayOptions {
  /// Value for steps [0, step_size).
  double initial_value = 0.1;
  /// Factor applied every `step_size` steps.
  double gamma = 0.1;
  /// Number of steps between two reductions (> 0).
  std::int64_t step_size = 1000;
};

/// Options of exponential_decay.
struct ExponentialDecayOptions {
  /// Value at step 0.
  double initial_value = 0.1;
  /// Factor applied over every `decay_steps` steps (in (0, 1] to decay).
  double decay_rate = 0.96;
  /// Number of steps over which the value is multiplied by `decay_rate` (> 0).
  std::int64_t decay_steps = 1000;
  /// When true, the exponent is floor(step / decay_steps): the value drops in stairs.
  bool staircase = false;
};

/// Options of cosine_decay.
struct CosineDecayOptions {
  /// Value reached at the end of the warmup, where the cosine phase starts.
  double peak_value = 1e-3;
  /// Length of the linear warmup from `initial_value` to `peak_value` (0 = no warmup).
  std::int64_t warmup_steps = 0;
  /// Length of the cosine phase after the warmup (> 0).
  std::int64_t decay_steps = 10000;
  /// Value at the end of the cosine phase, and from then on.
  double end_value = 0.0;
  /// Value at step 0, the start of the warmup.
  double initial_value = 0.0;
};

/// The same value at every step: v(t) = value.
Schedule constant_schedule(double value);
/// Multiplies by gamma every step_size steps: v(t) = initial_value · gamma^⌊t / step_size⌋.
Schedule step_decay(const StepDecayOptions& options);
/// v(t) = initial_value · decay_rate^(t / decay_steps) (exponent floored when staircase).
Schedule exponential_decay(const ExponentialDecayOptions& options);
/// Linear warmup, then half a cosine down to end_value (w = warmup_steps, d = decay_steps):
///   t < w:          v = initial + (peak − initial) · t / w
///   w ≤ t < w + d:  v = end + (peak − end) · (1 + cos(π (t − w) / d)) / 2
///   t ≥ w + d:      v = end
Schedule cosine_decay(const CosineDecayOptions& options);

}  // namespace layercache
