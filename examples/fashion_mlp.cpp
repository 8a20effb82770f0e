// Trains an MLP on Fashion-MNIST (Debian package dataset-fashion-mnist) with fit(), then
// reports the accuracy on the test set. Its last line is `test_accuracy <value>`.
//
//   fashion_mlp [--epochs N] [--batch-size N] [--learning-rate X] [--seed N] [--threads N]
//               [--data-dir DIR] [--history FILE.csv] [--onnx FILE.onnx] [--quiet]
//
// With --onnx it also exports the trained network as an ONNX model, which
// examples/onnx_classify.mjs runs in ONNX Runtime to the same test accuracy.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include "layercache/layercache.hpp"
#include "common.hpp"
#include "options.hpp"

using namespace layercache;

struct Args {
  std::size_t epochs = 12;
  std::size_t batch_size = 128;
  double learning_rate = 1e-3;
  std::uint64_t seed = 1;
  int threads = 2;
  std::string data_dir = "/usr/share/datasets/fashion-mnist";
  std::string history;
  std::string onnx;
  bool quiet = false;
};

const char* const usage =
    "usage: fashion_mlp [--epochs N] [--batch-size N] [--learning-rate X] [--seed N]\n"
    "                   [--threads N] [--data-dir DIR] [--history FILE.csv] [--onnx FILE.onnx]\n"
    "                   [--quiet]\n"
    "Trains a 784-512-256-10 MLP on Fashion-MNIST with fit() (defaults: 12 epochs, batch 128,\n"
    "peak learning rate 1e-3, seed 1, 2 threads, /usr/share/datasets/fashion-mnist) and prints\n"
    "the test accuracy last. --onnx also writes the trained network as an ONNX model.\n";

Args parse(int argc, char** argv) {
  using examples::integer;
  Args a;
  examples::parse_options(argc, argv, usage, [&](const std::string& flag, const examples::Value& value) {
    if (flag == "--epochs") a.epochs = integer<std::size_t>(flag, value());
    else if (flag == "--batch-size") a.batch_size = integer<std::size_t>(flag, value());
    else if (flag == "--learning-rate") a.learning_rate = examples::number(flag, value());
    else if (flag == "--seed") a.seed = integer<std::uint64_t>(flag, value());
    else if (flag == "--threads") a.threads = integer<int>(flag, value());
    else if (flag == "--data-dir") a.data_dir = value();
    else if (flag == "--history") a.history = value();
    else if (flag == "--onnx") a.onnx = value();
    else if (flag == "--quiet") a.quiet = true;
    else return false;
    return true;
  });
  return a;
}

int main(int argc, char** argv) try {
  const Args args = parse(argc, argv);
  set_blas_threads(args.threads);  // evaluation's matrix products; fit splits its batches

  // 60000 training images (of which 5000 held out for validation) and 10000 test images,
  // each a (1, 28, 28) column with pixels scaled to [0, 1].
  const Dataset<float> all_train = load_fashion_mnist<float>(args.data_dir, "train");
  const Dataset<float> test = load_fashion_mnist<float>(args.data_dir, "test");
  Rng rng(args.seed);
  const auto [train, validation] = train_validation_split(all_train, 5000.0 / 60000.0, rng);

  const Network net{Dense(784, 512), ReLU(), Dense(512, 256), ReLU(), Dense(256, 10)};
  TreeF params = net.init(train.shape, he_normal(), rng);
  TreeF state = net.init_state(train.shape);
  std::cout << net.summary(train.shape);
  const BlasInfo blas = blas_info();  // OpenBLAS's kernels, and why (docs/performance.md)
  std::printf("blas: %s kernels (%s)\n", blas.core.c_str(), blas.reason.c_str());

  // Adam with a short linear warmup and a cosine decay over the whole run.
  const auto steps = examples::steps_of(args.epochs, train.size(), args.batch_size);
  const Optimizer optimizer =
      adam({.learning_rate = examples::warmup_cosine(args.learning_rate, steps)});
  const History history = fit(net, params, state, optimizer, SoftmaxCrossEntropy(), train,
                              FitOptions<float>{.epochs = args.epochs,
                                                .batch_size = args.batch_size,
                                                .seed = args.seed,
                                                .validation = &validation,
                                                .progress = args.quiet ? Progress::silent
                                                                       : Progress::automatic,
                                                // each batch split across the threads
                                                .threads = std::size_t(std::max(args.threads, 1))});
  if (!args.history.empty()) history.write_csv(args.history);

  double seconds = 0;
  for (const auto& e : history.epochs) seconds += e.seconds;
  const Metrics m = evaluate(net, params, state, SoftmaxCrossEntropy(), test, 1024,
                             std::size_t(std::max(args.threads, 1)));
  if (!args.onnx.empty()) {  // input (batch, 1, 28, 28), output the 10 logits (docs/onnx.md)
    export_onnx(net, params, state, train.shape, args.onnx);
    std::printf("onnx_model %s\n", args.onnx.c_str());
  }
  std::printf("training_seconds %.1f\n", seconds);
  std::printf("test_loss %.4f\n", m.loss);
  std::printf("test_accuracy %.4f\n", m.accuracy);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "fashion_mlp: %s\n", e.what());
  return 1;
}
