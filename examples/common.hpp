// What the examples share besides option parsing (options.hpp): the first N samples of a data
// set for short runs, the learning-rate schedule they train with, and what the Fashion-MNIST
// classifiers print last (`test_accuracy <value>` the very last line; the scripts/check_*
// scripts read it).
//
//   examples::keep_first(train, args.train_size);
//   adam({.learning_rate = examples::warmup_cosine(args.learning_rate, steps)});
//   examples::report_test(net, params, state, test, history, threads);
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>

#include "layercache/layercache.hpp"

namespace examples {

/// Keeps the first n samples of `data` (for short runs); n = 0 or n ≥ its size keeps all.
template <class T>
void keep_first(layercache::Dataset<T>& data, std::size_t n) {
  if (n > 0 && n < data.size()) data = data.subset(arma::regspace<arma::uvec>(0, n - 1));
}

/// The number of steps of `epochs` epochs of `samples` samples in batches of `batch`.
inline std::int64_t steps_of(std::size_t epochs, std::size_t samples, std::size_t batch) {
  return std::int64_t(epochs * ((samples + batch - 1) / batch));
}

/// The examples' learning rate over a run of `steps` steps: a linear warmup to `peak` over
/// the first 5% of the steps, then a cosine decay over the rest.
inline layercache::Schedule warmup_cosine(double peak, std::int64_t steps) {
  return layercache::cosine_decay(
      {.peak_value = peak, .warmup_steps = steps / 20, .decay_steps = steps - steps / 20});
}

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
