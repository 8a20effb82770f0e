// The gradient transforms optimizers are built from. Each returns an Optimizer (a chain of
// one transform), so transforms and ready-made optimizers compose with chain():
//   Optimizer opt = chain(clip_by_global_norm(1.0), adam({.learning_rate = 3e-4}));
// In the formulas, u is the incoming update (the gradient for the first transform), p the
// params, t = step + 1 the 1-based number of the update being made; all operations are
// element-wise. Each transform skips frozen params (empty gradient leaves).
#pragma once

#include "layercache/optim/optimizer.hpp"
#include "layercache/optim/schedules.hpp"

namespace layercache {

/// Options of trace.
struct TraceOptions {
  /// Momentum coefficient μ in [0, 1).
  double decay = 0.9;
  /// Nesterov's variant: look ahead along the trace.
  bool nesterov = false;
};

/// Options of scale_by_adam.
struct ScaleByAdamOptions {
  /// Decay of the first moment, in [0, 1).
  double beta1 = 0.9;
  /// Decay of the second moment, in [0, 1).
  double beta2 = 0.999;
  /// Added to the root of the second moment, > 0.
  double eps = 1e-8;
};

/// Options of scale_by_rms.
struct ScaleByRmsOptions {
  /// Decay ρ of the running mean of squares, in [0, 1).
  double decay = 0.9;
  /// Added to the root mean square, > 0.
  double eps = 1e-8;
  /// Initial value of the running mean of squares, ≥ 0.
  double initial_scale = 0.0;
};

/// Options of scale_by_rss.
struct ScaleByRssOptions {
  /// Initial value of the sum of squares, ≥ 0.
  double initial_accumulator = 0.0;
  /// Added to the root of the sum of squares, > 0.
  double eps = 1e-10;
};

/// Options of reduce_on_plateau.
struct PlateauOptions {
  /// Factor in (0, 1) applied to the scale on a plateau.
  double factor = 0.1;
  /// Number of reported values without improvement that triggers a reduction (≥ 1).
  std::int64_t patience = 10;
  /// Relative improvement needed to count as better: value < best · (1 − threshold) when
  /// minimizing, value > best · (1 + threshold) when maximizing (≥ 0).
  double threshold = 1e-4;
  /// Number of reports after a reduction during which no bad report is counted (≥ 0).
  std::int64_t cooldown = 0;
  /// The scale never goes below this (≥ 0). The effective learning rate is
  /// learning_rate · scale, so min_lr = learning_rate · min_scale.
  double min_scale = 0.0;
  /// True when the monitored value should increase (accuracy), false for a loss.
  bool maximize = false;
};

/// u ← factor · u. Stateless.
Optimizer scale(double factor);
/// u ← 0: the params keep their values (p + 0; only a −0 turns into +0). The chain of a
/// frozen parameter group: partition({{.name = "encoder", .paths = {"encoder"},
/// .optimizer = set_to_zero()}, ...}). Stateless.
Optimizer set_to_zero();
/// u ← schedule(step) · u. Stateless (the step is the shared count).
Optimizer scale_by_schedule(Schedule schedule);
/// u ← −learning_rate(step) · u: the last transform of a descent chain. Stateless.
Optimizer scale_by_learning_rate(Schedule learning_rate);
/// Momentum. State "trace" (mirrors params), m₀ = 0:
///   m ← μ m + u;   u ← m            (nesterov: u ← u + μ m)
Optimizer trace(TraceOptions options = {});
/// Adam's direction with bias correction. State "mu", "nu" (mirror params), zero at first:
///   m ← β₁ m + (1 − β₁) u;   v ← β₂ v + (1 − β₂) u²
///   u ← m̂ / (√v̂ + ε),   m̂ = m / (1 − β₁ᵗ),   v̂ = v / (1 − β₂ᵗ)
Optimizer scale_by_adam(ScaleByAdamOptions options = {});
/// RMSProp's scaling. State "nu" (mirrors params), ν₀ = initial_scale:
///   ν ← ρ ν + (1 − ρ) u²;   u ← u / (√ν + ε)
Optimizer scale_by_rms(ScaleByRmsOptions options = {});
/// AdaGrad's scaling by the root of the sum of squares. State "sum" (mirrors params):
///   s ← s + u²;   u ← u / (√s + ε)
Optimizer scale_by_rss(ScaleByRssOptions options = {});
/// Decoupled weight decay (AdamW): u ← u + λ p. Put it before scale_by_learning_rate so the
/// decay is scaled by the learning rate: p ← p − lr (u + λ p). Stateless.
Optimizer add_decayed_weights(double weight_decay);
/// Scales the whole update tree so its global L2 norm is at most max_norm (> 0):
///   n = √(Σ_leaves Σ u²);   u ← u · max_norm / n   when n > max_norm, else unchanged.
/// Stateless.
Optimizer clip_by_global_norm(double max_norm);
/// Clamps every element to [−max_abs, max_abs] (max_abs > 0). Stateless.
Optimizer clip_by_value(double max_abs);
/// Multiplies the update by a scale that drops by `factor` when the metric reported with
/// Optimizer::report stops improving for `patience` reports. Place it last:
///   chain(adam({...}), reduce_on_plateau({.factor = 0.5, .patience = 3}))
/// State (all 1 × 1): "scale" (starts at 1), "best" (±inf at first), "bad_reports",
/// "cooldown" — so a resumed run continues exactly.
Optimizer reduce_on_plateau(PlateauOptions options = {});

}  // namespace layercache
