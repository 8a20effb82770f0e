// The element-wise gradient transforms: scaling, schedules, momentum, Adam, RMSProp,
// AdaGrad and decoupled weight decay. Each is written once, as update_slice_t over a slice
// of consecutive elements: Optimizer::update runs it slice by slice while the slice is in
// the L1 cache, and Transform::update (whole trees) runs it leaf by leaf. Plain loops over
// raw pointers: no temporaries, so a steady-state step allocates nothing.
#include "layercache/optim/transforms.hpp"

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <utility>

#include "tree_walk.hpp"
#include "../vector_kernel.hpp"

namespace layercache {
namespace {

using optim::for_each_update;
using optim::format_number;
using optim::require;

bool is_finite(double x) { return std::isfinite(x); }
bool in_unit_interval(double x) { return x >= 0.0 && x < 1.0; }

// A tree mirroring params with every entry equal to `value`.
template <class T>
Tree<T> filled_like(const Tree<T>& params, double value) {
  return map(params, [value](const std::string&, const arma::Mat<T>& p) {
    arma::Mat<T> out(p.n_rows, p.n_cols);
    out.fill(static_cast<T>(value));
    return out;
  });
}

// u ← factor · u
class Scale : public TransformImpl<Scale> {
 public:
  explicit Scale(double factor) : factor_(factor) {
    require(is_finite(factor), kind(), "the factor must be finite, got " + format_number(factor));
  }
  std::string kind() const override { return "scale"; }
  std::string describe() const override { return "scale(" + format_number(factor_) + ")"; }

  int slice_entries() const noexcept override { return 0; }
  template <class T>
  LAYERCACHE_VECTOR_KERNEL void update_slice_t(const Slice<T>& s, std::int64_t) const {
    const T factor = static_cast<T>(factor_);
    for (std::size_t i = 0; i < s.n; ++i) s.update[i] *= factor;
  }

 private:
  double factor_;
};

// u ← 0: the params stay as they are (a frozen parameter group).
class SetToZero : public TransformImpl<SetToZero> {
 public:
  std::string kind() const override { return "set_to_zero"; }

  int slice_entries() const noexcept override { return 0; }
  template <class T>
  void update_slice_t(const Slice<T>& s, std::int64_t) const {
    std::fill_n(s.update, s.n, T(0));
  }
};

// u ← sign · schedule(step) · u; sign −1 for scale_by_learning_rate, whose schedule is a
// learning rate and must not be negative (a negative one would climb the loss).
class ScaleBySchedule : public TransformImpl<ScaleBySchedule> {
 public:
  ScaleBySchedule(Schedule schedule, double sign, std::string kind)
      : schedule_(std::move(schedule)), sign_(sign), kind_(std::move(kind)) {
    if (learning_rate() && schedule_(0) < 0)
      throw ConfigError(kind_ + ": the learning rate must be ≥ 0, got " +
                        format_number(schedule_(0)) + " from " + schedule_.name() + " at step 0");
  }
  std::string kind() const override { return kind_; }
  std::string describe() const override { return kind_ + "(" + schedule_.name() + ")"; }

  template <class T>
  void check_t(const Tree<T>& state, const Tree<T>&, std::int64_t step) const {
    detail::expect_empty_state(state, *this);
    const double value = schedule_(step);
    if (!std::isfinite(value) || (learning_rate() && value < 0))
      throw NumericError("the schedule " + schedule_.name() + " gave " + format_number(value) +
                         " at step " + std::to_string(step) +
                         (std::isfinite(value) ? " (a learning rate must be ≥ 0)" : "") +
                         "; params were not changed");
  }
  int slice_entries() const noexcept override { return 0; }
  template <class T>
  LAYERCACHE_VECTOR_KERNEL void update_slice_t(const Slice<T>& s, std::int64_t step) const {
    const T factor = static_cast<T>(sign_ * schedule_(step));
    for (std::size_t i = 0; i < s.n; ++i) s.update[i] *= factor;
  }

 private:
  bool learning_rate() const noexcept { return sign_ < 0; }

  Schedule schedule_;
  double sign_;
  std::string kind_;
};

// m ← μ m + u;  u ← m  (nesterov: u ← u + μ m)
class Trace : public TransformImpl<Trace> {
 public:
  explicit Trace(TraceOptions options) : options_(options) {
    require(in_unit_interval(options.decay), kind(),
            "decay must be in [0, 1), got " + format_number(options.decay));
  }
  std::string kind() const override { return "trace"; }
  std::string describe() const override {
    return "trace(decay=" + format_number(options_.decay) +
           (options_.nesterov ? ", nesterov=true)" : ", nesterov=false)");
  }

  template <class T>
  Tree<T> init_t(const Tree<T>& params) const {
    Tree<T> state;
    state.add("trace", zeros_like(params));
    return state;
  }
  template <class T>
  void check_t(const Tree<T>& state, const Tree<T>& params, std::int64_t) const {
    optim::expect_entries(state, {"trace"}, *this);
    optim::expect_mirror(state.child(0), params, "trace");
  }
  int slice_entries() const noexcept override { return 1; }
  template <class T>
  LAYERCACHE_VECTOR_KERNEL void update_slice_t(const Slice<T>& s, std::int64_t) const {
    const T decay = static_cast<T>(options_.decay);
    T* __restrict u = s.update;
    T* __restrict m = s.state[0];
    if (options_.nesterov)
      for (std::size_t i = 0; i < s.n; ++i) {
        m[i] = decay * m[i] + u[i];
        u[i] += decay * m[i];
      }
    else
      for (std::size_t i = 0; i < s.n; ++i) u[i] = m[i] = decay * m[i] + u[i];
  }

 private:
  TraceOptions options_;
};

// m ← β₁ m + (1 − β₁) u;  v ← β₂ v + (1 − β₂) u²;  u ← m̂ / (√v̂ + ε)
class ScaleByAdam : public TransformImpl<ScaleByAdam> {
 public:
  explicit ScaleByAdam(ScaleByAdamOptions options) : options_(options) {
    require(in_unit_interval(options.beta1), kind(),
            "beta1 must be in [0, 1), got " + format_number(options.beta1));
    require(in_unit_interval(options.beta2), kind(),
            "beta2 must be in [0, 1), got " + format_number(options.beta2));
    require(options.eps > 0 && is_finite(options.eps), kind(),
            "eps must be finite and > 0 (it keeps a zero gradient from dividing 0 by 0), got " +
                format_number(options.eps));
  }
  std::string kind() const override { return "scale_by_adam"; }
  std::string describe() const override {
    return "scale_by_adam(beta1=" + format_number(options_.beta1) + ", beta2=" + format_number(options_.beta2) +
           ", eps=" + format_number(options_.eps) + ")";
  }

  template <class T>
  Tree<T> init_t(const Tree<T>& params) const {
    Tree<T> state;
    state.add("mu", zeros_like(params));
    state.add("nu", zeros_like(params));
    return state;
  }
  template <class T>
  void check_t(const Tree<T>& state, const Tree<T>& params, std::int64_t) const {
    optim::expect_entries(state, {"mu", "nu"}, *this);
    optim::expect_mirror(state.child(0), params, "mu");
    optim::expect_mirror(state.child(1), params, "nu");
  }
  template <class T>
  void check_values_t(const Tree<T>& state) const {
    detail::expect_state_values(state.child(0), "mu");
    detail::expect_state_values(state.child(1), "nu", "a second moment");
  }
  int slice_entries() const noexcept override { return 2; }
  template <class T>
  LAYERCACHE_VECTOR_KERNEL void update_slice_t(const Slice<T>& s, std::int64_t step) const {
    const double t = static_cast<double>(step + 1);
    const T b1 = static_cast<T>(options_.beta1), b2 = static_cast<T>(options_.beta2);
    const T one_minus_b1 = static_cast<T>(1.0 - options_.beta1);
    const T one_minus_b2 = static_cast<T>(1.0 - options_.beta2);
    // Bias corrections m̂ = m / (1 − β₁ᵗ), v̂ = v / (1 − β₂ᵗ), as multipliers.
    const T unbias1 = static_cast<T>(1.0 / (1.0 - std::pow(options_.beta1, t)));
    const T unbias2 = static_cast<T>(1.0 / (1.0 - std::pow(options_.beta2, t)));
    const T eps = static_cast<T>(options_.eps);
    T* __restrict u = s.update;
    T* __restrict m = s.state[0];
    T* __restrict v = s.state[1];
    for (std::size_t i = 0; i < s.n; ++i) {
      m[i] = b1 * m[i] + one_minus_b1 * u[i];
      v[i] = b2 * v[i] + one_minus_b2 * (u[i] * u[i]);
      u[i] = (unbias1 * m[i]) / (std::sqrt(unbias2 * v[i]) + eps);
    }
  }

 private:
  ScaleByAdamOptions options_;
};

// ν ← ρ ν + (1 − ρ) u²;  u ← u / (√ν + ε)
class ScaleByRms : public TransformImpl<ScaleByRms> {
 public:
  explicit ScaleByRms(ScaleByRmsOptions options) : options_(options) {
    require(in_unit_interval(options.decay), kind(),
            "decay must be in [0, 1), got " + format_number(options.decay));
    require(options.eps > 0 && is_finite(options.eps), kind(),
            "eps must be finite and > 0 (it keeps a zero gradient from dividing 0 by 0), got " +
                format_number(options.eps));
    require(options.initial_scale >= 0 && is_finite(options.initial_scale), kind(),
            "initial_scale must be finite and ≥ 0, got " + format_number(options.initial_scale));
  }
  std::string kind() const override { return "scale_by_rms"; }
  std::string describe() const override {
    return "scale_by_rms(decay=" + format_number(options_.decay) + ", eps=" + format_number(options_.eps) +
           ", initial_scale=" + format_number(options_.initial_scale) + ")";
  }

  template <class T>
  Tree<T> init_t(const Tree<T>& params) const {
    Tree<T> state;
    state.add("nu", filled_like(params, options_.initial_scale));
    return state;
  }
  template <class T>
  void check_t(const Tree<T>& state, const Tree<T>& params, std::int64_t) const {
    optim::expect_entries(state, {"nu"}, *this);
    optim::expect_mirror(state.child(0), params, "nu");
  }
  template <class T>
  void check_values_t(const Tree<T>& state) const {
    detail::expect_state_values(state.child(0), "nu", "a mean of squares");
  }
  int slice_entries() const noexcept override { return 1; }
  template <class T>
  LAYERCACHE_VECTOR_KERNEL void update_slice_t(const Slice<T>& s, std::int64_t) const {
    const T decay = static_cast<T>(options_.decay);
    const T one_minus_decay = static_cast<T>(1.0 - options_.decay);
    const T eps = static_cast<T>(options_.eps);
    T* __restrict u = s.update;
    T* __restrict nu = s.state[0];
    for (std::size_t i = 0; i < s.n; ++i) {
      nu[i] = decay * nu[i] + one_minus_decay * (u[i] * u[i]);
      u[i] = u[i] / (std::sqrt(nu[i]) + eps);
    }
  }

 private:
  ScaleByRmsOptions options_;
};

// s ← s + u²;  u ← u / (√s + ε)
class ScaleByRss : public TransformImpl<ScaleByRss> {
 public:
  explicit ScaleByRss(ScaleByRssOptions options) : options_(options) {
    require(options.initial_accumulator >= 0 && is_finite(options.initial_accumulator), kind(),
            "initial_accumulator must be finite and ≥ 0, got " +
                format_number(options.initial_accumulator));
    require(options.eps > 0 && is_finite(options.eps), kind(),
            "eps must be finite and > 0 (it keeps a zero gradient from dividing 0 by 0), got " +
                format_number(options.eps));
  }
  std::string kind() const override { return "scale_by_rss"; }
  std::string describe() const override {
    return "scale_by_rss(initial_accumulator=" + format_number(options_.initial_accumulator) +
           ", eps=" + format_number(options_.eps) + ")";
  }

  template <class T>
  Tree<T> init_t(const Tree<T>& params) const {
    Tree<T> state;
    state.add("sum", filled_like(params, options_.initial_accumulator));
    return state;
  }
  template <class T>
  void check_t(const Tree<T>& state, const Tree<T>& params, std::int64_t) const {
    optim::expect_entries(state, {"sum"}, *this);
    optim::expect_mirror(state.child(0), params, "sum");
  }
  template <class T>
  void check_values_t(const Tree<T>& state) const {
    detail::expect_state_values(state.child(0), "sum", "a sum of squares");
  }
  int slice_entries() const noexcept override { return 1; }
  template <class T>
  LAYERCACHE_VECTOR_KERNEL void update_slice_t(const Slice<T>& s, std::int64_t) const {
    const T eps = static_cast<T>(options_.eps);
    T* __restrict u = s.update;
    T* __restrict sum = s.state[0];
    for (std::size_t i = 0; i < s.n; ++i) {
      sum[i] += u[i] * u[i];
      u[i] = u[i] / (std::sqrt(sum[i]) + eps);
    }
  }

 private:
  ScaleByRssOptions options_;
};

// u ← u + λ p  (frozen params are skipped with their updates, so they are never decayed)
class AddDecayedWeights : public TransformImpl<AddDecayedWeights> {
 public:
  explicit AddDecayedWeights(double weight_decay) : weight_decay_(weight_decay) {
    require(weight_decay >= 0 && is_finite(weight_decay), kind(),
            "weight_decay must be finite and ≥ 0, got " + format_number(weight_decay));
  }
  std::string kind() const override { return "add_decayed_weights"; }
  std::string describe() const override {
    return "add_decayed_weights(" + format_number(weight_decay_) + ")";
  }

  int slice_entries() const noexcept override { return 0; }
  template <class T>
  LAYERCACHE_VECTOR_KERNEL void update_slice_t(const Slice<T>& s, std::int64_t) const {
    const T weight_decay = static_cast<T>(weight_decay_);
    for (std::size_t i = 0; i < s.n; ++i) s.update[i] += weight_decay * s.param[i];
  }

 private:
  double weight_decay_;
};

}  // namespace

Optimizer scale(double factor) { return Optimizer(std::make_shared<const Scale>(factor)); }

Optimizer set_to_zero() { return Optimizer(std::make_shared<const SetToZero>()); }

Optimizer scale_by_schedule(Schedule schedule) {
  return Optimizer(
      std::make_shared<const ScaleBySchedule>(std::move(schedule), 1.0, "scale_by_schedule"));
}

Optimizer scale_by_learning_rate(Schedule learning_rate) {
  return Optimizer(std::make_shared<const ScaleBySchedule>(std::move(learning_rate), -1.0,
                                                           "scale_by_learning_rate"));
}

Optimizer trace(TraceOptions options) { return Optimizer(std::make_shared<const Trace>(options)); }

Optimizer scale_by_adam(ScaleByAdamOptions options) {
  return Optimizer(std::make_shared<const ScaleByAdam>(options));
}

Optimizer scale_by_rms(ScaleByRmsOptions options) {
  return Optimizer(std::make_shared<const ScaleByRms>(options));
}

Optimizer scale_by_rss(ScaleByRssOptions options) {
  return Optimizer(std::make_shared<const ScaleByRss>(options));
}

Optimizer add_decayed_weights(double weight_decay) {
  return Optimizer(std::make_shared<const AddDecayedWeights>(weight_decay));
}

}  // namespace layercache
