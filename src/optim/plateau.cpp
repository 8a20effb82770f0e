// Reduce-on-plateau: a transform whose scale drops when a reported metric stops improving.
// Its scale, best value and counters live in the optimizer state, so checkpoints resume it.
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <string>

#include "layercache/optim/transforms.hpp"
#include "tree_walk.hpp"

namespace layercache {
namespace {

using optim::format_number;
using optim::require;

class ReduceOnPlateau : public TransformImpl<ReduceOnPlateau> {
 public:
  explicit ReduceOnPlateau(PlateauOptions options) : options_(options) {
    require(options.factor > 0 && options.factor < 1, kind(),
            "factor must be in (0, 1), got " + format_number(options.factor));
    require(options.patience >= 1, kind(),
            "patience must be ≥ 1, got " + std::to_string(options.patience));
    require(options.threshold >= 0 && std::isfinite(options.threshold), kind(),
            "threshold must be finite and ≥ 0, got " + format_number(options.threshold));
    require(options.cooldown >= 0, kind(),
            "cooldown must be ≥ 0, got " + std::to_string(options.cooldown));
    require(options.min_scale >= 0 && options.min_scale <= 1, kind(),
            "min_scale must be in [0, 1], got " + format_number(options.min_scale));
  }
  std::string kind() const override { return "reduce_on_plateau"; }
  std::string describe() const override {
    return "reduce_on_plateau(factor=" + format_number(options_.factor) +
           ", patience=" + std::to_string(options_.patience) +
           ", threshold=" + format_number(options_.threshold) +
           ", cooldown=" + std::to_string(options_.cooldown) +
           ", min_scale=" + format_number(options_.min_scale) +
           (options_.maximize ? ", maximize=true)" : ", maximize=false)");
  }

  template <class T>
  Tree<T> init_t(const Tree<T>&) const {
    const double worst = options_.maximize ? -std::numeric_limits<double>::infinity()
                                           : std::numeric_limits<double>::infinity();
    Tree<T> state;
    state.add("scale", scalar<T>(1.0));
    state.add("best", scalar<T>(worst));
    state.add("bad_reports", scalar<T>(0.0));
    state.add("cooldown", scalar<T>(0.0));
    return state;
  }
  template <class T>
  void check_t(const Tree<T>& state, const Tree<T>&, std::int64_t) const {
    check_own(state);
  }
  // Nothing more to check: check_t checks the four scalars at every step (best is ±inf at
  // first, which the default check_values would refuse).
  template <class T>
  void check_values_t(const Tree<T>&) const {}
  template <class T>
  void update_t(Tree<T>& updates, Tree<T>& state, const Tree<T>&, std::int64_t) const {
    const T factor = state.child(0).value()(0, 0);
    optim::for_each_update([factor](arma::Mat<T>& u) { u *= factor; }, updates);
  }
  // Keras' rule: a report better than the best resets the count of bad reports; the
  // patience-th bad report in a row multiplies the scale by `factor` (not below min_scale)
  // and starts the cooldown, during which bad reports are not counted. NaN is never better.
  template <class T>
  void report_t(Tree<T>& state, double value) const {
    check_own(state);
    T& scale = state.child(0).value()(0, 0);
    T& best = state.child(1).value()(0, 0);
    T& bad_reports = state.child(2).value()(0, 0);
    T& cooldown = state.child(3).value()(0, 0);
    const double best_value = static_cast<double>(best);
    const double margin = std::isfinite(best_value) ? options_.threshold * std::abs(best_value) : 0.0;
    const bool improved = options_.maximize ? value > best_value + margin : value < best_value - margin;
    const bool in_cooldown = cooldown > 0;
    if (in_cooldown) {
      cooldown -= 1;
      bad_reports = 0;
    }
    if (improved) {
      best = static_cast<T>(value);
      bad_reports = 0;
    } else if (!in_cooldown) {
      bad_reports += 1;
      if (bad_reports >= static_cast<T>(options_.patience)) {
        scale = static_cast<T>(std::max(static_cast<double>(scale) * options_.factor, options_.min_scale));
        bad_reports = 0;
        cooldown = static_cast<T>(options_.cooldown);
      }
    }
  }

 private:
  template <class T>
  static Tree<T> scalar(double value) {
    return Tree<T>(arma::Mat<T>(1, 1, arma::fill::value(static_cast<T>(value))));
  }
  // The entries and their values: four scalars, cheap enough to check at every update and
  // report.
  template <class T>
  void check_own(const Tree<T>& state) const {
    optim::expect_entries(state, {"scale", "best", "bad_reports", "cooldown"}, *this);
    optim::expect_scalar(state.child(0), "scale");
    optim::expect_scalar(state.child(1), "best");  // NaN is refused; ±inf before any report
    optim::expect_whole_number(state.child(2), "bad_reports", "the number of bad reports");
    optim::expect_whole_number(state.child(3), "cooldown", "the cooldown");
    const double scale = static_cast<double>(state.child(0).value()(0, 0));
    if (!(std::isfinite(scale) && scale >= 0))
      throw ConfigError("the scale must be finite and ≥ 0, found " + format_number(scale), "scale");
  }

  PlateauOptions options_;
};

}  // namespace

Optimizer reduce_on_plateau(PlateauOptions options) {
  return Optimizer(std::make_shared<const ReduceOnPlateau>(options));
}

}  // namespace layercache
