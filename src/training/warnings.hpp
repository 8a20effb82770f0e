// Library-internal (not installed): the mistakes fit() flags once, as warnings in the progress
// output and in History::warnings, without stopping the run.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "layercache/layer.hpp"
#include "layercache/losses.hpp"

namespace layercache::detail {

// A warning when the network's output layer applies the activation the loss applies again
// (Softmax before SoftmaxCrossEntropy, Sigmoid before BinaryCrossEntropyWithLogits): the
// gradients shrink and training stalls far below what the network can reach.
std::optional<std::string> activation_applied_twice(const Layer& network, const Shape& input,
                                                    const Loss& loss);

// Watches the loss of the first steps of a run: a loss that turns non-finite or grows to
// `factor` times the mean of the first `baseline` steps within the first `window` steps gives
// one warning that the learning rate is probably too large.
class LossExplosionWatch {
 public:
  // The warning, the first time a step's loss shows the explosion; nothing otherwise.
  std::optional<std::string> step(double loss);

  static constexpr std::size_t baseline = 3;
  static constexpr std::size_t window = 100;
  static constexpr double factor = 10;

 private:
  std::size_t steps_ = 0;
  double baseline_sum_ = 0;
  bool warned_ = false;
};

}  // namespace layercache::detail
