// The Fashion-MNIST training of fashion_mlp written by hand from the primitives: forward,
// loss, backward, optimizer update. fit() does exactly this, plus progress, validation and
// callbacks. Results are written into last step's buffers, so a step allocates nothing.
//
//   custom_loop [--epochs N] [--data-dir DIR]
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
  examples::parse_options(
      argc, argv,
      "usage: custom_loop [--epochs N] [--data-dir DIR]\n"
      "Trains fashion_mlp's network with a hand-written loop (default 5 epochs); exits 1 when\n"
      "the test accuracy is under 0.8.\n",
      [&](const std::string& flag, const examples::Value& value) {
        if (flag == "--epochs") epochs = examples::integer<std::size_t>(flag, value());
        else if (flag == "--data-dir") data_dir = value();
        else return false;
        return true;
      });
  set_blas_threads(2);
  const Dataset<float> train = load_fashion_mnist<float>(data_dir, "train");
  const Dataset<float> test = load_fashion_mnist<float>(data_dir, "test");

  const Network net{Dense(784, 512), ReLU(), Dense(512, 256), ReLU(), Dense(256, 10)};
  Rng rng(1);
  TreeF params = net.init(train.shape, he_normal(), rng);
  const Optimizer optimizer = adam({.learning_rate = 1e-3});
  OptStateF opt_state = optimizer.init(params);
  const SoftmaxCrossEntropy loss;

  // Everything a step writes, kept across steps.
  BatchPlan plan = batches(train.size(), 128, /*drop_last=*/false, &rng);
  Batch<float> batch;
  ForwardResult<float> forward;
  BackwardResult<float> backward;
  arma::fmat dy;
  const Needs needs{.input = false};  // the input batch needs no gradient
  Context ctx{.mode = Mode::train, .rng = &rng};

  for (std::size_t epoch = 1; epoch <= epochs; ++epoch) {
    plan.reshuffle(rng);
    double loss_sum = 0;
    for (std::size_t b = 0; b < plan.size(); ++b) {
      copy_batch(train, plan, plan[b], batch);
      net.forward(params, batch.x, train.shape, ctx, forward);
      loss_sum += loss.value_and_grad(forward.y(), batch.labels, dy) * double(batch.x.n_cols);
      net.backward(params, *forward.cache, dy, needs, backward);
      optimizer.update(params, backward.grads, opt_state);
    }
    std::printf("epoch %zu  loss %.4f\n", epoch, loss_sum / double(train.size()));
  }

  const arma::fmat logits = net.infer(params, test.x, test.shape);
  const double test_accuracy = accuracy(logits, test.labels);
  std::printf("test_accuracy %.4f\n", test_accuracy);
  return test_accuracy >= 0.8 ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "custom_loop: %s\n", e.what());
  return 1;
}
