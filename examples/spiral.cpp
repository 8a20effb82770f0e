// Trains a small network to separate two interleaved spirals, generated in code, and prints
// its training accuracy. The smallest end-to-end use of layercache: data, network,
// initializer, optimizer, loss, fit.
#include <cmath>
#include <cstdio>
#include <numbers>

#include "layercache/layercache.hpp"
#include "options.hpp"

using namespace layercache;

// Two spirals of n points each: class k is the spiral r = t, angle = t + kπ, with noise.
Dataset<float> two_spirals(std::size_t n, Rng& rng) {
  Dataset<float> data;
  data.shape = Shape{2};
  data.n_classes = 2;
  data.x.set_size(2, 2 * n);
  data.labels.set_size(2 * n);
  for (std::size_t i = 0; i < 2 * n; ++i) {
    const std::size_t label = i % 2;
    const double t = 0.5 + 3.5 * std::numbers::pi * double(i / 2) / double(n);
    const double angle = t + double(label) * std::numbers::pi;
    data.x(0, i) = float(t * std::cos(angle) / 4 + rng.normal(0, 0.05));
    data.x(1, i) = float(t * std::sin(angle) / 4 + rng.normal(0, 0.05));
    data.labels[i] = label;
  }
  return data;
}

int main(int argc, char** argv) {
  examples::parse_options(argc, argv,
                          "usage: spiral\nTrains a small network on two interleaved spirals and "
                          "prints its training accuracy;\nexits 1 when it is under 0.97.\n",
                          [](const std::string&, const examples::Value&) { return false; });
  Rng rng(42);
  const Dataset<float> data = two_spirals(500, rng);

  const Network net{Dense(2, 64), Tanh(), Dense(64, 64), Tanh(), Dense(64, 2)};
  TreeF params = net.init(data.shape, xavier_uniform(), rng);
  TreeF state = net.init_state(data.shape);
  std::printf("%s", net.summary(data.shape).c_str());

  const History history = fit(net, params, state, adam({.learning_rate = 0.01}),
                              SoftmaxCrossEntropy(), data,
                              FitOptions<float>{.epochs = 150, .batch_size = 50, .seed = 1,
                                                .progress = Progress::silent});
  const Metrics m = evaluate(net, params, state, SoftmaxCrossEntropy(), data);
  std::printf("epochs %zu  final loss %.4f\n", history.epochs.size(), m.loss);
  std::printf("train_accuracy %.4f\n", m.accuracy);
  return m.accuracy >= 0.97 ? 0 : 1;
}
