// The Fashion-MNIST training of fashion_mlp written by hand: epochs of shuffled batches, each
// one train_step on the run (a TrainState: params, state, optimizer state, random stream and
// counters in one value). fit() does exactly this, plus progress, validation and callbacks.
// A step writes into the run's buffers from the last step, so it allocates nothing.
//
//   custom_loop [--epochs N] [--data-dir DIR] [--save FILE]
//
// Exits with status 1 when the network did not learn (test accuracy under 0.8; one epoch
// reaches about 0.86), so the test suite runs it as a check of the primitives together.
#include <cstdio>
#include <string>

#include "layercache/layercache.hpp"
#include "options.hpp"

using namespace layercache;

int main(int argc, char** argv) try {
  std::size_t epochs = 5;
  std::string data_dir = "/usr/share/datasets/fashion-mnist";
  std::string save_path;
  examples::parse_options(
      argc, argv,
      "usage: custom_loop [--epochs N] [--data-dir DIR] [--save FILE]\n"
      "Trains fashion_mlp's network with a hand-written loop (default 5 epochs), saves the run\n"
      "to FILE if given; exits 1 when the test accuracy is under 0.8.\n",
      [&](const std::string& flag, const examples::Value& value) {
        if (flag == "--epochs") epochs = examples::integer<std::size_t>(flag, value());
        else if (flag == "--data-dir") data_dir = value();
        else if (flag == "--save") save_path = value();
        else return false;
        return true;
      });
  set_blas_threads(2);
  const Dataset<float> train = load_fashion_mnist<float>(data_dir, "train");
  const Dataset<float> test = load_fashion_mnist<float>(data_dir, "test");

  const Network net{Dense(784, 512), ReLU(), Dense(512, 256), ReLU(), Dense(256, 10)};
  const Optimizer optimizer = adam({.learning_rate = 1e-3});
  const SoftmaxCrossEntropy loss;
  // The whole run in one value: params, state, optimizer state, the random stream, counters.
  TrainStateF run = init_train_state<float>(net, train.shape, optimizer, he_normal(), /*seed=*/1);

  for (std::size_t epoch = 1; epoch <= epochs; ++epoch) {
    const BatchPlan plan = batches(train.size(), 128, /*drop_last=*/false, &run.rng);
    double loss_sum = 0;
    for (const BatchRange& batch : plan.ranges)
      loss_sum += train_step(net, run, optimizer, loss, train, plan, batch).loss * double(batch.size());
    std::printf("epoch %zu  loss %.4f\n", epoch, loss_sum / double(train.size()));
  }
  if (!save_path.empty()) save_train_state(save_path, run);  // resume with load_train_state

  const arma::fmat logits = net.infer(run.params, test.x, test.shape);
  const double test_accuracy = accuracy(logits, test.labels);
  std::printf("test_accuracy %.4f\n", test_accuracy);
  return test_accuracy >= 0.8 ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "custom_loop: %s\n", e.what());
  return 1;
}
