// The familiar optimizers as ready-made chains of transforms.
#include <utility>
#include <vector>

#include "layercache/optimizers.hpp"

namespace layercache {

Optimizer sgd(SgdOptions o) { return scale_by_learning_rate(std::move(o.learning_rate)); }

Optimizer momentum(MomentumOptions o) {
  return chain(trace({.decay = o.momentum, .nesterov = false}),
               scale_by_learning_rate(std::move(o.learning_rate)));
}

Optimizer nesterov(NesterovOptions o) {
  return chain(trace({.decay = o.momentum, .nesterov = true}),
               scale_by_learning_rate(std::move(o.learning_rate)));
}

Optimizer adam(AdamOptions o) {
  return chain(scale_by_adam({.beta1 = o.beta1, .beta2 = o.beta2, .eps = o.eps}),
               scale_by_learning_rate(std::move(o.learning_rate)));
}

Optimizer adamw(AdamWOptions o) {
  return chain(scale_by_adam({.beta1 = o.beta1, .beta2 = o.beta2, .eps = o.eps}),
               add_decayed_weights(o.weight_decay),
               scale_by_learning_rate(std::move(o.learning_rate)));
}

Optimizer rmsprop(RmspropOptions o) {
  std::vector<Optimizer> parts{scale_by_rms({.decay = o.decay, .eps = o.eps})};
  if (o.momentum != 0.0) parts.push_back(trace({.decay = o.momentum}));
  parts.push_back(scale_by_learning_rate(std::move(o.learning_rate)));
  return chain(std::move(parts));
}

Optimizer adagrad(AdagradOptions o) {
  return chain(scale_by_rss({.initial_accumulator = o.initial_accumulator, .eps = o.eps}),
               scale_by_learning_rate(std::move(o.learning_rate)));
}

}  // namespace layercache
