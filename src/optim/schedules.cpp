// Schedules: constant, step decay, exponential decay and cosine decay with linear warmup.
#include "layercache/optim/schedules.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include "layercache/errors.hpp"
#include "tree_walk.hpp"

namespace layercache {
namespace {

using optim::format_number;
using optim::require;

constexpr double pi = 3.14159265358979323846;

}  // namespace

Schedule::Schedule(double value)
    : name_("constant(" + format_number(value) + ")"), function_([value](std::int64_t) { return value; }) {
  require(std::isfinite(value), "constant schedule", "the value must be finite, got " + format_number(value));
}

Schedule::Schedule(std::string name, Function function)
    : name_(std::move(name)), function_(std::move(function)) {
  if (!function_) throw ConfigError("schedule '" + name_ + "' was given an empty function");
}

Schedule constant_schedule(double value) { return Schedule(value); }

Schedule step_decay(const StepDecayOptions& o) {
  const std::string kind = "step_decay";
  require(std::isfinite(o.initial_value), kind, "initial_value must be finite");
  require(o.gamma > 0 && std::isfinite(o.gamma), kind, "gamma must be finite and > 0, got " + format_number(o.gamma));
  require(o.step_size > 0, kind, "step_size must be > 0, got " + std::to_string(o.step_size));
  return Schedule(kind + "(initial=" + format_number(o.initial_value) + ", gamma=" + format_number(o.gamma) +
                      ", every=" + std::to_string(o.step_size) + ")",
                  [o](std::int64_t step) {
                    const std::int64_t drops = std::max<std::int64_t>(step, 0) / o.step_size;
                    return o.initial_value * std::pow(o.gamma, static_cast<double>(drops));
                  });
}

Schedule exponential_decay(const ExponentialDecayOptions& o) {
  const std::string kind = "exponential_decay";
  require(std::isfinite(o.initial_value), kind, "initial_value must be finite");
  require(o.decay_rate > 0 && std::isfinite(o.decay_rate), kind,
          "decay_rate must be finite and > 0, got " + format_number(o.decay_rate));
  require(o.decay_steps > 0, kind, "decay_steps must be > 0, got " + std::to_string(o.decay_steps));
  return Schedule(kind + "(initial=" + format_number(o.initial_value) + ", rate=" + format_number(o.decay_rate) +
                      ", steps=" + std::to_string(o.decay_steps) +
                      (o.staircase ? ", staircase)" : ")"),
                  [o](std::int64_t step) {
                    const double t = static_cast<double>(std::max<std::int64_t>(step, 0));
                    const double steps = static_cast<double>(o.decay_steps);
                    const double exponent = o.staircase ? std::floor(t / steps) : t / steps;
                    return o.initial_value * std::pow(o.decay_rate, exponent);
                  });
}

Schedule cosine_decay(const CosineDecayOptions& o) {
  const std::string kind = "cosine_decay";
  require(std::isfinite(o.peak_value) && std::isfinite(o.end_value) && std::isfinite(o.initial_value),
          kind, "peak_value, end_value and initial_value must be finite");
  require(o.warmup_steps >= 0, kind, "warmup_steps must be ≥ 0, got " + std::to_string(o.warmup_steps));
  require(o.decay_steps > 0, kind, "decay_steps must be > 0, got " + std::to_string(o.decay_steps));
  return Schedule(kind + "(peak=" + format_number(o.peak_value) + ", warmup=" + std::to_string(o.warmup_steps) +
                      ", decay=" + std::to_string(o.decay_steps) + ", end=" + format_number(o.end_value) +
                      ", initial=" + format_number(o.initial_value) + ")",
                  [o](std::int64_t step) {
                    const std::int64_t t = std::max<std::int64_t>(step, 0);
                    if (t < o.warmup_steps)
                      return o.initial_value + (o.peak_value - o.initial_value) *
                                                   static_cast<double>(t) /
                                                   static_cast<double>(o.warmup_steps);
                    const std::int64_t into_decay = t - o.warmup_steps;
                    if (into_decay >= o.decay_steps) return o.end_value;
                    const double progress =
                        static_cast<double>(into_decay) / static_cast<double>(o.decay_steps);
                    return o.end_value + (o.peak_value - o.end_value) * 0.5 * (1.0 + std::cos(pi * progress));
                  });
}

}  // namespace layercache
