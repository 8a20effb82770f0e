// An LSTM reads each Fashion-MNIST image (Debian package dataset-fashion-mnist) as a sequence
// of its 28 rows of 28 pixels, top to bottom, and a dense layer classifies its last hidden
// state; trained with fit(). Its last line is `test_accuracy <value>`.
//
//   fashion_rnn [--epochs N] [--hidden N] [--batch-size N] [--learning-rate X]
//               [--train-size N] [--seed N] [--threads N] [--data-dir DIR] [--quiet]
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <string>

#include "layercache/layercache.hpp"
#include "options.hpp"
#include "common.hpp"

using namespace layercache;

struct Args {
  std::size_t epochs = 8;
  std::size_t hidden = 128;
  std::size_t batch_size = 128;
  double learning_rate = 2e-3;
  std::size_t train_size = 0;  // 0: all 60000 images
  std::uint64_t seed = 1;
  int threads = 2;
  std::string data_dir = "/usr/share/datasets/fashion-mnist";
  bool quiet = false;
};

const char* const usage =
    "usage: fashion_rnn [--epochs N] [--hidden N] [--batch-size N] [--learning-rate X]\n"
    "                   [--train-size N] [--seed N] [--threads N] [--data-dir DIR] [--quiet]\n"
    "Trains LSTM(28 → hidden) + Dense(hidden → 10) on Fashion-MNIST images read as 28 rows of\n"
    "28 pixels (defaults: 8 epochs, 128 hidden units, batch 128, peak learning rate 2e-3,\n"
    "all 60000 images (--train-size N: the first N), seed 1, 2 threads,\n"
    "/usr/share/datasets/fashion-mnist) and prints the test accuracy last.\n";

Args parse(int argc, char** argv) {
  using examples::integer;
  Args a;
  examples::parse_options(argc, argv, usage, [&](const std::string& flag, const examples::Value& value) {
    if (flag == "--epochs") a.epochs = integer<std::size_t>(flag, value());
    else if (flag == "--hidden") a.hidden = integer<std::size_t>(flag, value());
    else if (flag == "--batch-size") a.batch_size = integer<std::size_t>(flag, value());
    else if (flag == "--learning-rate") a.learning_rate = examples::number(flag, value());
    else if (flag == "--train-size") a.train_size = integer<std::size_t>(flag, value());
    else if (flag == "--seed") a.seed = integer<std::uint64_t>(flag, value());
    else if (flag == "--threads") a.threads = integer<int>(flag, value());
    else if (flag == "--data-dir") a.data_dir = value();
    else if (flag == "--quiet") a.quiet = true;
    else return false;
    return true;
  });
  return a;
}

// An image column holds the pixel matrix in column-major order, so its contiguous runs of 28
// are the image's columns. A sequence step is a contiguous run (docs/sequences.md): transposing
// each image makes step t its row t.
void rows_as_steps(Dataset<float>& data) {
  for (std::size_t i = 0; i < data.size(); ++i) {
    arma::fmat image(data.x.colptr(i), 28, 28, false, true);  // a view of sample i
    image = arma::fmat(image.t());
  }
  data.shape = Shape{28, 28};
}

int main(int argc, char** argv) try {
  const Args args = parse(argc, argv);
  set_blas_threads(args.threads);  // evaluation's matrix products; fit splits its batches

  Dataset<float> all_train = load_fashion_mnist<float>(args.data_dir, "train");
  Dataset<float> test = load_fashion_mnist<float>(args.data_dir, "test");
  examples::keep_first(all_train, args.train_size);  // the first N, for short runs
  rows_as_steps(all_train);
  rows_as_steps(test);
  Rng rng(args.seed);
  const auto [train, validation] = train_validation_split(all_train, 0.05, rng);

  // The LSTM's last hidden state (after row 28) feeds the classifier.
  const Network net{LSTM({.n_in = 28, .n_hidden = args.hidden}), Dense(args.hidden, 10)};
  TreeF params = net.init(train.shape, xavier_uniform(), rng);
  TreeF state = net.init_state(train.shape);
  if (!args.quiet) std::cout << net.summary(train.shape);

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
                                                .threads = std::size_t(std::max(args.threads, 1))});
  examples::report_test(net, params, state, test, history, args.threads);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "fashion_rnn: %s\n", e.what());
  return 1;
}
