// Gradient clipping: by the global L2 norm of the whole update tree, and by value.
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>

#include "layercache/optim/transforms.hpp"
#include "tree_walk.hpp"
#include "../vector_kernel.hpp"

namespace layercache {
namespace {

using optim::for_each_update;
using optim::format_number;
using optim::require;

// n = √(Σ u²) over every non-frozen leaf;  u ← u · max_norm / n  when n > max_norm.
class ClipByGlobalNorm : public TransformImpl<ClipByGlobalNorm> {
 public:
  explicit ClipByGlobalNorm(double max_norm) : max_norm_(max_norm) {
    require(max_norm > 0 && std::isfinite(max_norm), kind(),
            "max_norm must be finite and > 0, got " + format_number(max_norm));
  }
  std::string kind() const override { return "clip_by_global_norm"; }
  std::string describe() const override {
    return "clip_by_global_norm(" + format_number(max_norm_) + ")";
  }

  template <class T>
  void update_t(Tree<T>& updates, Tree<T>&, const Tree<T>&, std::int64_t) const {
    double sum = 0.0;
    for_each_update([&sum](const arma::Mat<T>& u) { sum += optim::sum_of_squares(u); }, updates);
    const double norm = std::sqrt(sum);
    if (!(norm > max_norm_)) return;  // small updates pass unchanged
    const T factor = static_cast<T>(max_norm_ / norm);
    for_each_update([factor](arma::Mat<T>& u) { u *= factor; }, updates);
  }

 private:
  double max_norm_;
};

// u ← clamp(u, −max_abs, max_abs)
class ClipByValue : public TransformImpl<ClipByValue> {
 public:
  explicit ClipByValue(double max_abs) : max_abs_(max_abs) {
    require(max_abs > 0 && std::isfinite(max_abs), kind(),
            "max_abs must be finite and > 0, got " + format_number(max_abs));
  }
  std::string kind() const override { return "clip_by_value"; }
  std::string describe() const override { return "clip_by_value(" + format_number(max_abs_) + ")"; }

  int slice_entries() const noexcept override { return 0; }
  template <class T>
  LAYERCACHE_VECTOR_KERNEL void update_slice_t(const Slice<T>& s, std::int64_t) const {
    const T max_abs = static_cast<T>(max_abs_);
    for (std::size_t i = 0; i < s.n; ++i) s.update[i] = std::clamp(s.update[i], -max_abs, max_abs);
  }

 private:
  double max_abs_;
};

}  // namespace

Optimizer clip_by_global_norm(double max_norm) {
  return Optimizer(std::make_shared<const ClipByGlobalNorm>(max_norm));
}

Optimizer clip_by_value(double max_abs) {
  return Optimizer(std::make_shared<const ClipByValue>(max_abs));
}

}  // namespace layercache
