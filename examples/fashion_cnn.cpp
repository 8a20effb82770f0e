// Trains a convolutional network with BatchNorm, ReLU, max pooling and Dropout on
// Fashion-MNIST (Debian package dataset-fashion-mnist) with fit(), then reports the accuracy on
// the test set. Its last line is `test_accuracy <value>`.
//
//   fashion_cnn [--epochs N] [--width N] [--convs N] [--batch-size N] [--learning-rate X]
//               [--flip] [--shift N] [--train-size N] [--seed N] [--threads N]
//               [--data-dir DIR] [--history FILE.csv] [--quiet]
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include "layercache/layercache.hpp"
#include "options.hpp"
#include "common.hpp"

using namespace layercache;

struct Args {
  std::size_t epochs = 12;
  std::size_t width = 24;
  std::size_t convs = 2;
  bool flip = false;  // augmentation: random left-right flips
  int shift = 0;      // augmentation: random shifts of up to this many pixels
  std::size_t batch_size = 128;
  double learning_rate = 2e-3;
  std::size_t train_size = 0;  // 0: all 60000 images
  std::uint64_t seed = 1;
  int threads = 2;
  std::string data_dir = "/usr/share/datasets/fashion-mnist";
  std::string history;
  bool quiet = false;
};

const char* const usage =
    "usage: fashion_cnn [--epochs N] [--width N] [--convs N] [--batch-size N]\n"
    "                   [--learning-rate X] [--flip] [--shift N] [--train-size N]\n"
    "                   [--seed N] [--threads N] [--data-dir DIR] [--history FILE.csv] [--quiet]\n"
    "Trains a CNN on Fashion-MNIST with fit(): two blocks of --convs x [3x3 convolution,\n"
    "BatchNorm, ReLU], 2x2 max pooling and channel dropout (--width, then 2 x --width\n"
    "channels), then Dense(256), BatchNorm, ReLU, Dropout and Dense(10); AdamW with warmup\n"
    "and cosine decay. --flip and --shift N train each epoch on a copy of the images flipped\n"
    "left to right at random and shifted by up to N pixels. Defaults: 12 epochs, width 24,\n"
    "2 convolutions per block, batch 128, peak learning rate 2e-3, no flips or shifts, all\n"
    "60000 images (--train-size N: the first N), seed 1, 2 threads,\n"
    "/usr/share/datasets/fashion-mnist. Prints the test accuracy last.\n";

Args parse(int argc, char** argv) {
  using examples::integer;
  Args a;
  examples::parse_options(argc, argv, usage, [&](const std::string& flag, const examples::Value& value) {
    if (flag == "--epochs") a.epochs = integer<std::size_t>(flag, value());
    else if (flag == "--width") a.width = integer<std::size_t>(flag, value());
    else if (flag == "--convs") {
      a.convs = integer<std::size_t>(flag, value());
      if (a.convs == 0) throw examples::UsageError("option --convs needs at least 1");
    }
    else if (flag == "--batch-size") a.batch_size = integer<std::size_t>(flag, value());
    else if (flag == "--learning-rate") a.learning_rate = examples::number(flag, value());
    else if (flag == "--train-size") a.train_size = integer<std::size_t>(flag, value());
    else if (flag == "--seed") a.seed = integer<std::uint64_t>(flag, value());
    else if (flag == "--threads") a.threads = integer<int>(flag, value());
    else if (flag == "--data-dir") a.data_dir = value();
    else if (flag == "--history") a.history = value();
    else if (flag == "--flip") a.flip = true;
    else if (flag == "--shift") {
      a.shift = integer<int>(flag, value());
      if (a.shift >= 28) throw examples::UsageError("option --shift needs fewer than 28 pixels");
    }
    else if (flag == "--quiet") a.quiet = true;
    else return false;
    return true;
  });
  return a;
}

// A 3x3 convolution keeping the image size, normalized, then ReLU. The convolution has no
// bias: BatchNorm subtracts the mean, which cancels it, and its shift takes its place.
Network conv_bn_relu(std::size_t in_channels, std::size_t out_channels) {
  return Network{Conv2D({.in_channels = in_channels, .out_channels = out_channels, .kernel = 3,
                         .padding = 1, .bias = false}),
                 BatchNorm(out_channels), ReLU()};
}

// `convs` convolutions at one image size, then 2x2 max pooling halving it and channel dropout.
Network block(std::size_t in_channels, std::size_t out_channels, std::size_t convs) {
  std::vector<AnyLayer> layers{conv_bn_relu(in_channels, out_channels)};
  for (std::size_t i = 1; i < convs; ++i)
    layers.emplace_back(conv_bn_relu(out_channels, out_channels));
  layers.emplace_back(MaxPool2D({.kernel = 2}));
  layers.emplace_back(Dropout2D({.rate = 0.1}));
  return Network(std::move(layers));
}

// A copy of `data` with each image flipped left to right with probability 1/2 (when `flip`)
// and shifted by up to max_shift pixels along each axis, the uncovered border left at 0 (the
// background). Sample i's 28×28 matrix m holds pixel (row r, column c) at m(r, c)
// (docs/convolution.md).
Dataset<float> augmented(const Dataset<float>& data, bool flip, int max_shift, Rng& rng) {
  Dataset<float> out = data;
  arma::fmat moved(28, 28);
  const auto shift = [&] { return int(rng.below(std::uint64_t(2 * max_shift + 1))) - max_shift; };
  for (std::size_t i = 0; i < out.size(); ++i) {
    arma::fmat m(out.x.colptr(i), 28, 28, false, true);  // a view of sample i
    const bool mirror = flip && rng.uniform() < 0.5;
    const int down = shift(), right = shift();
    moved.zeros();
    for (int c = std::max(0, right); c < std::min(28, 28 + right); ++c) {
      const int from_c = mirror ? 27 - (c - right) : c - right;
      for (int r = std::max(0, down); r < std::min(28, 28 + down); ++r)
        moved(r, c) = m(r - down, from_c);
    }
    m = moved;
  }
  return out;
}

int main(int argc, char** argv) try {
  const Args args = parse(argc, argv);
  set_blas_threads(args.threads);  // evaluation's matrix products; fit splits its batches

  // 60000 training images (5% held out for validation) and 10000 test images, each a
  // (1, 28, 28) column with pixels scaled to [0, 1].
  Dataset<float> all_train = load_fashion_mnist<float>(args.data_dir, "train");
  const Dataset<float> test = load_fashion_mnist<float>(args.data_dir, "test");
  examples::keep_first(all_train, args.train_size);  // the first N, for short runs
  Rng rng(args.seed);
  const auto [train, validation] = train_validation_split(all_train, 0.05, rng);

  // (1, 28, 28) → (w, 14, 14) → (2w, 7, 7) → 256 → 10 classes.
  const std::size_t w = args.width;
  const Network net{block(1, w, args.convs), block(w, 2 * w, args.convs), Flatten(),
                    Dense(2 * w * 7 * 7, 256, {.bias = false}), BatchNorm(256), ReLU(),
                    Dropout({.rate = 0.4}), Dense(256, 10)};
  if (!args.quiet) std::cout << net.summary(train.shape);

  // AdamW with a short linear warmup and a cosine decay over the whole run.
  const auto steps = examples::steps_of(args.epochs, train.size(), args.batch_size);
  const Optimizer optimizer =
      adamw({.learning_rate = examples::warmup_cosine(args.learning_rate, steps),
             .weight_decay = 5e-4});
  // The run as one value: params, BatchNorm's running statistics (state), the optimizer state
  // and the stream that shuffles and draws the dropout masks.
  TrainStateF run = init_train_state<float>(net, train.shape, optimizer, he_normal(), args.seed);
  // fit continues the run by one epoch each time (its `epochs` counts the run's epochs), so
  // that with --flip or --shift each epoch trains on a fresh augmented copy of the images.
  const bool augment = args.flip || args.shift > 0;
  for (std::size_t epoch = 1; epoch <= args.epochs; ++epoch) {
    const Dataset<float> copy =
        augment ? augmented(train, args.flip, args.shift, rng) : Dataset<float>{};
    fit(net, run, optimizer, SoftmaxCrossEntropy(), augment ? copy : train,
        FitOptions<float>{.epochs = epoch,
                          .batch_size = args.batch_size,
                          .validation = &validation,
                          .progress = Progress::silent,
                          // each batch split across the threads, with BatchNorm's statistics
                          // the whole batch's
                          .threads = std::size_t(std::max(args.threads, 1))});
    const EpochLog& e = run.history.epochs.back();
    if (!args.quiet)
      std::printf("epoch %zu/%zu  loss %.4f  accuracy %.4f  val_loss %.4f  val_accuracy %.4f"
                  "  %.1fs\n", epoch, args.epochs, e.loss, e.accuracy, e.val_loss, e.val_accuracy,
                  e.seconds);
    std::fflush(stdout);
  }
  const History& history = run.history;
  if (!args.history.empty()) history.write_csv(args.history);

  examples::report_test(net, run.params, run.state, test, history, args.threads);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "fashion_cnn: %s\n", e.what());
  return 1;
}
