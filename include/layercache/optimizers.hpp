// Optimizers (docs/optimizers.md): the familiar names as ready-made chains of gradient transforms.
//
//   Optimizer opt = adam({.learning_rate = 1e-3});
//   OptState<float> opt_state = opt.init(params);    // a Tree<float>: checkpoint it by path
//   opt.update(params, grads, opt_state);             // in place; returns the update norm
//
// Each takes an options struct with named fields and the defaults shown. A learning rate is
// a number or a Schedule (optim/schedules.hpp). Build your own from the transforms in
// optim/transforms.hpp with chain(). The update rules are written out in docs/optimizers.md.
#pragma once

#include "layercache/optim/optimizer.hpp"
#include "layercache/optim/partition.hpp"
#include "layercache/optim/schedules.hpp"
#include "layercache/optim/transforms.hpp"

namespace layercache {

/// Options of sgd.
struct SgdOptions {
  /// Step size (a number or a Schedule), ≥ 0.
  Schedule learning_rate = 0.01;
};

/// Options of momentum (heavy-ball SGD, as in PyTorch with dampening 0).
struct MomentumOptions {
  /// Step size (a number or a Schedule), ≥ 0.
  Schedule learning_rate = 0.01;
  /// Momentum coefficient μ in [0, 1).
  double momentum = 0.9;
};

/// Options of nesterov.
struct NesterovOptions {
  /// Step size (a number or a Schedule), ≥ 0.
  Schedule learning_rate = 0.01;
  /// Momentum coefficient μ in [0, 1).
  double momentum = 0.9;
};

/// Options of adam.
struct AdamOptions {
  /// Step size (a number or a Schedule), ≥ 0.
  Schedule learning_rate = 1e-3;
  /// Decay of the first moment.
  double beta1 = 0.9;
  /// Decay of the second moment.
  double beta2 = 0.999;
  /// Added to the root of the second moment.
  double eps = 1e-8;
};

/// Options of adamw.
struct AdamWOptions {
  /// Step size (a number or a Schedule), ≥ 0.
  Schedule learning_rate = 1e-3;
  /// Decay of the first moment.
  double beta1 = 0.9;
  /// Decay of the second moment.
  double beta2 = 0.999;
  /// Added to the root of the second moment.
  double eps = 1e-8;
  /// Decoupled weight decay λ (multiplied by the learning rate).
  double weight_decay = 1e-2;
};

/// Options of rmsprop.
struct RmspropOptions {
  /// Step size (a number or a Schedule), ≥ 0.
  Schedule learning_rate = 1e-3;
  /// Decay ρ of the running mean of squared gradients.
  double decay = 0.9;
  /// Added to the root mean square.
  double eps = 1e-8;
  /// Momentum on the scaled gradient (0 = none).
  double momentum = 0.0;
};

/// Options of adagrad.
struct AdagradOptions {
  /// Step size (a number or a Schedule), ≥ 0.
  Schedule learning_rate = 1e-2;
  /// Initial value of the sum of squared gradients.
  double initial_accumulator = 0.0;
  /// Added to the root of the sum of squares.
  double eps = 1e-10;
};

/// Stochastic gradient descent: p ← p − lr · g.
/// = chain(scale_by_learning_rate(lr)).
Optimizer sgd(SgdOptions options = {});
/// SGD with momentum: m ← μ m + g;  p ← p − lr · m.
/// = chain(trace({μ}), scale_by_learning_rate(lr)).
Optimizer momentum(MomentumOptions options = {});
/// SGD with Nesterov momentum: m ← μ m + g;  p ← p − lr · (g + μ m).
/// = chain(trace({μ, nesterov}), scale_by_learning_rate(lr)).
Optimizer nesterov(NesterovOptions options = {});
/// Adam (Kingma & Ba) with bias correction: p ← p − lr · m̂ / (√v̂ + ε).
/// = chain(scale_by_adam(β₁, β₂, ε), scale_by_learning_rate(lr)).
Optimizer adam(AdamOptions options = {});
/// AdamW (Loshchilov & Hutter), decoupled weight decay: p ← p − lr · (m̂ / (√v̂ + ε) + λ p).
/// = chain(scale_by_adam, add_decayed_weights(λ), scale_by_learning_rate(lr)).
Optimizer adamw(AdamWOptions options = {});
/// RMSProp: ν ← ρ ν + (1 − ρ) g²;  p ← p − lr · g / (√ν + ε)  (with momentum μ > 0:
/// b ← μ b + g / (√ν + ε);  p ← p − lr · b).
/// = chain(scale_by_rms, [trace({μ})], scale_by_learning_rate(lr)).
Optimizer rmsprop(RmspropOptions options = {});
/// AdaGrad: s ← s + g²;  p ← p − lr · g / (√s + ε).
/// = chain(scale_by_rss, scale_by_learning_rate(lr)).
Optimizer adagrad(AdagradOptions options = {});

}  // namespace layercache
