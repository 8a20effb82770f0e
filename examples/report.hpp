// What the Fashion-MNIST classifiers print last: the training time and the test set's loss and
// accuracy, `test_accuracy <value>` the very last line (the scripts/check_* scripts read it).
//
//   examples::report_test(net, params, state, test, history, threads);
#pragma once

#include <algorithm>
#include <cstdio>

#include "layercache/layercache.hpp"

namespace examples {

/// Evaluates the classifier on `test` in infer mode (batches of 1024 dealt to `threads`
/// threads) and prints `training_seconds` (the history's epochs added up), `test_loss` and
/// `test_accuracy`, in that order; returns the metrics.
template <class T>
layercache::Metrics report_test(const layercache::Layer& net, const layercache::Tree<T>& params,
                                const layercache::Tree<T>& state,
                                const layercache::Dataset<T>& test,
                                const layercache::History& history, int threads) {
  double seconds = 0;
  for (const auto& e : history.epochs) seconds += e.seconds;
  const layercache::Metrics m =
      layercache::evaluate(net, params, state, layercache::SoftmaxCrossEntropy(), test, 1024,
                           std::size_t(std::max(threads, 1)));
  std::printf("training_seconds %.1f\n", seconds);
  std::printf("test_loss %.4f\n", m.loss);
  std::printf("test_accuracy %.4f\n", m.accuracy);
  return m;
}

}  // namespace examples
