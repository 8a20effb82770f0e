// An autoencoder on Fashion-MNIST (Debian package dataset-fashion-mnist), then its trained
// encoder, frozen, inside a classifier with a new head. Networks of networks, tree surgery
// and parameter groups in one program:
//   1. autoencoder = Network{encoder, decoder}, trained with MSE to reproduce its input (a
//      data set whose targets are its inputs: no copy of the images);
//   2. a PNG of test images and their reconstructions, drawn by gnuplot;
//   3. classifier = Network{encoder, head}: the trained encoder grafted in, kept frozen by a
//      set_to_zero parameter group while Adam trains the head.
// Its last line is `test_accuracy <value>`.
//
//   autoencoder [--ae-epochs N] [--epochs N] [--samples N] [--batch-size N] [--seed N]
//               [--threads N] [--data-dir DIR] [--png FILE.png] [--quiet]
#include <algorithm>
#include <cstdio>
#include <string>

#include "layercache/layercache.hpp"
#include "options.hpp"

using namespace layercache;

struct Args {
  std::size_t ae_epochs = 8;
  std::size_t epochs = 8;
  std::size_t samples = 60000;
  std::size_t batch_size = 128;
  std::uint64_t seed = 1;
  int threads = 2;
  std::string data_dir = "/usr/share/datasets/fashion-mnist";
  std::string png = "autoencoder.png";
  bool quiet = false;
};

const char* const usage =
    "usage: autoencoder [--ae-epochs N] [--epochs N] [--samples N] [--batch-size N] [--seed N]\n"
    "                   [--threads N] [--data-dir DIR] [--png FILE.png] [--quiet]\n"
    "Trains a 784-256-64 encoder and a 64-256-784 decoder on Fashion-MNIST to reproduce their\n"
    "input (--ae-epochs, default 8), draws test images over their reconstructions to --png\n"
    "(default autoencoder.png; needs gnuplot), then trains a new head on the frozen encoder\n"
    "(--epochs, default 8) and prints the test accuracy last. --samples uses the first N\n"
    "training images (default all 60000); batch 128, seed 1, 2 threads.\n";

Args parse(int argc, char** argv) {
  using examples::integer;
  Args a;
  examples::parse_options(argc, argv, usage, [&](const std::string& flag, const examples::Value& value) {
    if (flag == "--ae-epochs") a.ae_epochs = integer<std::size_t>(flag, value());
    else if (flag == "--epochs") a.epochs = integer<std::size_t>(flag, value());
    else if (flag == "--samples") a.samples = integer<std::size_t>(flag, value());
    else if (flag == "--batch-size") a.batch_size = integer<std::size_t>(flag, value());
    else if (flag == "--seed") a.seed = integer<std::uint64_t>(flag, value());
    else if (flag == "--threads") a.threads = integer<int>(flag, value());
    else if (flag == "--data-dir") a.data_dir = value();
    else if (flag == "--png") a.png = value();
    else if (flag == "--quiet") a.quiet = true;
    else return false;
    return true;
  });
  return a;
}

// Draws the first 10 images of `x` (one 28 × 28 image per column) above the same columns of
// `reconstructed`, with gnuplot, into `png`. Returns false when gnuplot could not run.
bool draw(const arma::fmat& x, const arma::fmat& reconstructed, const std::string& png) {
  FILE* gnuplot = popen("gnuplot", "w");
  if (!gnuplot) return false;
  std::fprintf(gnuplot, "$pixels << EOD\n");
  for (int row = 0; row < 56; ++row) {  // the originals' 28 rows, then the reconstructions'
    const arma::fmat& images = row < 28 ? x : reconstructed;
    for (int i = 0; i < 10; ++i)
      for (int col = 0; col < 28; ++col)  // pixel (r, c) at r + 28 c: column-major images
        std::fprintf(gnuplot, "%.3f ", std::clamp(images(row % 28 + 28 * col, i), 0.0f, 1.0f));
    std::fprintf(gnuplot, "\n");
  }
  std::fprintf(gnuplot,
               "EOD\nset terminal pngcairo size 1000,240\nset output '%s'\n"
               "set title 'test images (top) and their reconstructions (bottom)'\n"
               "unset key\nunset tics\nunset border\nunset colorbox\nset size ratio -1\n"
               "set palette gray negative\nset xrange [-0.5:279.5]\nset yrange [55.5:-0.5]\n"
               "plot $pixels matrix with image\n",
               png.c_str());
  return pclose(gnuplot) == 0;
}

FitOptions<float> fit_options(const Args& args, std::size_t epochs, const Dataset<float>& validation) {
  return {.epochs = epochs,
          .batch_size = args.batch_size,
          .seed = args.seed,
          .validation = &validation,
          .progress = args.quiet ? Progress::silent : Progress::automatic,
          .threads = std::size_t(std::max(args.threads, 1))};
}

int main(int argc, char** argv) try {
  const Args args = parse(argc, argv);
  set_blas_threads(args.threads);
  Dataset<float> all_train = load_fashion_mnist<float>(args.data_dir, "train");
  if (args.samples < all_train.size())
    all_train = all_train.subset(arma::regspace<arma::uvec>(0, args.samples - 1));
  const Dataset<float> test = load_fashion_mnist<float>(args.data_dir, "test");
  Rng rng(args.seed);
  const auto [train, validation] = train_validation_split(all_train, 1.0 / 12.0, rng);

  // 1. The autoencoder: two networks nested in one, trained to reproduce the images.
  const Network encoder{Dense(784, 256), ReLU(), Dense(256, 64)};
  const Network decoder{Dense(64, 256), ReLU(), Dense(256, 784), Sigmoid()};
  const Network autoencoder{named("encoder", encoder), named("decoder", decoder)};
  TreeF ae_params = autoencoder.init(train.shape, he_normal(), rng);
  TreeF no_state;
  const Dataset<float> images = inputs_as_targets(train);  // targets: the images themselves
  const Dataset<float> validation_images = inputs_as_targets(validation);
  const History ae_history =
      fit(autoencoder, ae_params, no_state, adam({.learning_rate = 1e-3}), MeanSquaredError(),
          images, fit_options(args, args.ae_epochs, validation_images));
  const Metrics reconstruction = evaluate(autoencoder, ae_params, no_state, MeanSquaredError(),
                                          inputs_as_targets(test));
  std::printf("reconstruction_mse %.5f\n", reconstruction.loss);

  // 2. Test images over their reconstructions.
  const arma::fmat originals = test.x.cols(0, 9);
  if (draw(originals, autoencoder.infer(ae_params, originals, test.shape), args.png))
    std::printf("reconstructions_png %s\n", args.png.c_str());
  else
    std::fprintf(stderr, "autoencoder: gnuplot did not draw %s\n", args.png.c_str());

  // 3. The classifier: the trained encoder grafted in (its paths and shapes are checked),
  // frozen by its parameter group; only the new head trains.
  const Network classifier{named("encoder", encoder),
                           named("head", Network{Dense(64, 128), ReLU(), Dense(128, 10)})};
  TreeF params = classifier.init(train.shape, he_normal(), rng);
  graft(params, "encoder", ae_params.at("encoder"));
  const Optimizer optimizer = partition({
      {.name = "encoder", .paths = {"encoder"}, .optimizer = set_to_zero()},
      {.name = "head", .paths = {"head"}, .optimizer = adam({.learning_rate = 1e-3})},
  });
  const History history = fit(classifier, params, no_state, optimizer, SoftmaxCrossEntropy(),
                              train, fit_options(args, args.epochs, validation));
  if (!params.at("encoder").identical(ae_params.at("encoder"))) {
    std::fprintf(stderr, "autoencoder: the frozen encoder changed\n");
    return 1;
  }
  double seconds = 0;
  for (const auto& e : ae_history.epochs) seconds += e.seconds;
  for (const auto& e : history.epochs) seconds += e.seconds;
  const Metrics m = evaluate(classifier, params, no_state, SoftmaxCrossEntropy(), test, 1024,
                             std::size_t(std::max(args.threads, 1)));
  std::printf("encoder_frozen yes\n");
  std::printf("training_seconds %.1f\n", seconds);
  std::printf("test_accuracy %.4f\n", m.accuracy);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "autoencoder: %s\n", e.what());
  return 1;
}
