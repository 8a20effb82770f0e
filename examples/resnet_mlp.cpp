// Trains a residual MLP on Fashion-MNIST: a stem, residual blocks y = x + f(x) (Residual
// around a small Network), and a classifier head. Its last line is `test_accuracy <value>`;
// it exits with status 1 when the test accuracy is under --min-accuracy (default 0.8).
//
//   resnet_mlp [--epochs N] [--blocks N] [--width N] [--train-size N] [--batch-size N]
//              [--learning-rate X] [--seed N] [--threads N] [--min-accuracy X]
//              [--data-dir DIR] [--quiet]
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "layercache/layercache.hpp"
#include "common.hpp"
#include "options.hpp"

using namespace layercache;

struct Args {
  std::size_t epochs = 8;
  std::size_t blocks = 3;
  std::size_t width = 256;
  std::size_t train_size = 0;  // 0: all 60000 images
  std::size_t batch_size = 128;
  double learning_rate = 1e-3;
  std::uint64_t seed = 1;
  int threads = 2;
  double min_accuracy = 0.8;
  std::string data_dir = "/usr/share/datasets/fashion-mnist";
  bool quiet = false;
};

const char* const usage =
    "usage: resnet_mlp [--epochs N] [--blocks N] [--width N] [--train-size N] [--batch-size N]\n"
    "                  [--learning-rate X] [--seed N] [--threads N] [--min-accuracy X]\n"
    "                  [--data-dir DIR] [--quiet]\n"
    "Trains a residual MLP (Dense(784, width), then `blocks` residual blocks\n"
    "x + Dense(ReLU(Dense(x))), each followed by a ReLU, then Dense(width, 10)) on\n"
    "Fashion-MNIST with fit() (defaults: 8 epochs, 3 blocks, width 256, all 60000 training\n"
    "images (--train-size N: the first N), batch 128, Adam at 1e-3 with a cosine decay,\n"
    "seed 1, 2 threads) and prints the test accuracy last; exits 1 when it is under\n"
    "--min-accuracy (0.8).\n";

Args parse(int argc, char** argv) {
  using examples::integer;
  Args a;
  examples::parse_options(argc, argv, usage, [&](const std::string& flag, const examples::Value& value) {
    if (flag == "--epochs") a.epochs = integer<std::size_t>(flag, value());
    else if (flag == "--blocks") a.blocks = integer<std::size_t>(flag, value());
    else if (flag == "--width") a.width = integer<std::size_t>(flag, value());
    else if (flag == "--train-size") a.train_size = integer<std::size_t>(flag, value());
    else if (flag == "--batch-size") a.batch_size = integer<std::size_t>(flag, value());
    else if (flag == "--learning-rate") a.learning_rate = examples::number(flag, value());
    else if (flag == "--seed") a.seed = integer<std::uint64_t>(flag, value());
    else if (flag == "--threads") a.threads = integer<int>(flag, value());
    else if (flag == "--min-accuracy") a.min_accuracy = examples::number(flag, value());
    else if (flag == "--data-dir") a.data_dir = value();
    else if (flag == "--quiet") a.quiet = true;
    else return false;
    return true;
  });
  return a;
}

// Dense(784, w) ReLU, then `blocks` times x + Dense(w, w)(ReLU(Dense(w, w)(x))), each followed
// by a ReLU, then Dense(w, 10). Each block is named block1, block2, ... so its params read
// block1/inner/dense1/weight.
Network residual_mlp(std::size_t blocks, std::size_t width) {
  std::vector<AnyLayer> layers{Dense(784, width), ReLU()};
  for (std::size_t b = 1; b <= blocks; ++b) {
    layers.push_back(named("block" + std::to_string(b),
                           Residual(Network{Dense(width, width), ReLU(), Dense(width, width)})));
    layers.push_back(ReLU());
  }
  layers.push_back(Dense(width, 10));
  return Network(layers);
}

int main(int argc, char** argv) try {
  const Args args = parse(argc, argv);
  set_blas_threads(args.threads);
  Rng rng(args.seed);
  Dataset<float> train = load_fashion_mnist<float>(args.data_dir, "train");
  const Dataset<float> test = load_fashion_mnist<float>(args.data_dir, "test");
  examples::keep_first(train, args.train_size);  // the first N, for short runs

  const Network net = residual_mlp(args.blocks, args.width);
  TreeF params = net.init(train.shape, he_normal(), rng);
  TreeF state = net.init_state(train.shape);
  std::printf("%s", net.summary(train.shape).c_str());

  const auto steps = examples::steps_of(args.epochs, train.size(), args.batch_size);
  const Optimizer optimizer =
      adam({.learning_rate = examples::warmup_cosine(args.learning_rate, steps)});
  fit(net, params, state, optimizer, SoftmaxCrossEntropy(), train,
      FitOptions<float>{.epochs = args.epochs,
                        .batch_size = args.batch_size,
                        .seed = args.seed,
                        .progress = args.quiet ? Progress::silent : Progress::automatic,
                        .threads = std::size_t(std::max(args.threads, 1))});
  const Metrics m = evaluate(net, params, state, SoftmaxCrossEntropy(), test, 1024,
                             std::size_t(std::max(args.threads, 1)));
  std::printf("test_loss %.4f\n", m.loss);
  std::printf("test_accuracy %.4f\n", m.accuracy);
  return m.accuracy >= args.min_accuracy ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "resnet_mlp: %s\n", e.what());
  return 1;
}
