// A Siamese network on Fashion-MNIST: one encoder, its weights shared by two Graph nodes,
// embeds two images; a head reads the squared difference of the embeddings and says whether
// the two images show the same kind of garment. Trained with fit() on pairs, it prints the
// pair accuracy on pairs of test images last (`pair_accuracy <value>`), after checking that
// the weights stayed shared: the params hold the encoder once, and swapping the two images of
// a pair changes no output bit. Exits with status 1 when either check fails or the accuracy
// is under --min-accuracy (default 0.85).
//
//   siamese [--epochs N] [--pairs N] [--seed N] [--min-accuracy X] [--data-dir DIR] [--quiet]
#include <cstdio>
#include <string>

#include "layercache/layercache.hpp"
#include "options.hpp"

using namespace layercache;

// n pairs of images of `images`, each a column of 2 × 784 rows (the left image, then the
// right one: a Graph sample holds its inputs one after another), labelled 1 when both show
// the same class. Half the pairs are of one class, half of two different classes.
Dataset<float> make_pairs(const Dataset<float>& images, std::size_t n, Rng& rng) {
  std::vector<std::vector<arma::uword>> by_class(images.n_classes);
  for (arma::uword i = 0; i < images.size(); ++i) by_class[images.labels[i]].push_back(i);
  Dataset<float> pairs;
  pairs.shape = Shape{2 * images.shape.size()};
  pairs.n_classes = 2;
  pairs.x.set_size(pairs.shape.size(), n);
  pairs.labels.set_size(n);
  const std::size_t d = images.shape.size();
  for (std::size_t p = 0; p < n; ++p) {
    const bool same = p % 2 == 0;
    const std::size_t a = rng.below(images.size());
    std::size_t b;
    do {
      const auto& pool = by_class[same ? images.labels[a] : rng.below(images.n_classes)];
      b = pool[rng.below(pool.size())];
    } while (b == a || (images.labels[b] == images.labels[a]) != same);
    pairs.x.col(p).head(d) = images.x.col(a);
    pairs.x.col(p).tail(d) = images.x.col(b);
    pairs.labels[p] = same ? 1 : 0;
  }
  return pairs;
}

// The pairs with their two images swapped.
arma::fmat swapped(const arma::fmat& x) {
  const arma::uword d = x.n_rows / 2;
  return arma::join_cols(x.rows(d, 2 * d - 1), x.rows(0, d - 1));
}

int main(int argc, char** argv) try {
  std::size_t epochs = 5, n_pairs = 60000;
  std::uint64_t seed = 1;
  double min_accuracy = 0.85;
  std::string data_dir = "/usr/share/datasets/fashion-mnist";
  bool quiet = false;
  examples::parse_options(
      argc, argv,
      "usage: siamese [--epochs N] [--pairs N] [--seed N] [--min-accuracy X] [--data-dir DIR]\n"
      "               [--quiet]\n"
      "Trains a Siamese network (one encoder shared by both images of a pair) to tell whether\n"
      "two Fashion-MNIST images show the same class (defaults: 5 epochs of 60000 training\n"
      "pairs, seed 1), checks that the encoder's weights stayed shared, and prints the pair\n"
      "accuracy on 10000 test pairs last; exits 1 when a check fails or the accuracy is\n"
      "under --min-accuracy (0.85).\n",
      [&](const std::string& flag, const examples::Value& value) {
        if (flag == "--epochs") epochs = examples::integer<std::size_t>(flag, value());
        else if (flag == "--pairs") n_pairs = examples::integer<std::size_t>(flag, value());
        else if (flag == "--seed") seed = examples::integer<std::uint64_t>(flag, value());
        else if (flag == "--min-accuracy") min_accuracy = examples::number(flag, value());
        else if (flag == "--data-dir") data_dir = value();
        else if (flag == "--quiet") quiet = true;
        else return false;
        return true;
      });
  set_blas_threads(2);
  Rng rng(seed);
  const Dataset<float> train = make_pairs(load_fashion_mnist<float>(data_dir, "train"), n_pairs, rng);
  const Dataset<float> test = make_pairs(load_fashion_mnist<float>(data_dir, "test"), 10000, rng);

  // embed_right applies embed_left's encoder with embed_left's params: one set of weights.
  const Network encoder{Dense(784, 256), ReLU(), Dense(256, 64)};
  const Graph siamese({.inputs = {{"left", Shape{784}}, {"right", Shape{784}}},
                       .nodes = {{.name = "embed_left", .layer = encoder, .inputs = {"left"}},
                                 {.name = "embed_right", .inputs = {"right"}, .shares = "embed_left"},
                                 {.name = "difference", .inputs = {"embed_left", "embed_right"},
                                  .merge = Merge::subtract},
                                 {.name = "squared", .inputs = {"difference", "difference"},
                                  .merge = Merge::multiply},
                                 {.name = "head", .layer = Network{Dense(64, 32), ReLU(), Dense(32, 2)},
                                  .inputs = {"squared"}}},
                       .outputs = {"head"}});
  TreeF params = siamese.init(train.shape, he_normal(), rng);
  TreeF state = siamese.init_state(train.shape);
  std::printf("%s", Network{named("siamese", siamese)}.summary(train.shape).c_str());

  fit(siamese, params, state, adam({.learning_rate = 1e-3}), SoftmaxCrossEntropy(), train,
      FitOptions<float>{.epochs = epochs, .batch_size = 128, .seed = seed,
                        .progress = quiet ? Progress::silent : Progress::automatic, .threads = 2});

  // The weights stayed shared: the params hold the encoder once (no embed_right entry, and
  // as many scalars as one encoder and the head), and the network is symmetric in its two
  // images bit for bit, which two encoders with different weights would not be.
  const std::size_t encoder_size = encoder.init(Shape{784}, he_normal(), rng).count();
  const bool one_entry = params.size() == 2 && params.find("embed_left") &&
                         !params.find("embed_right") &&
                         params.at("embed_left").count() == encoder_size;
  const arma::fmat logits = siamese.infer(params, test.x, test.shape, state);
  const bool symmetric = arma::approx_equal(logits, siamese.infer(params, swapped(test.x), test.shape, state),
                                            "absdiff", 0.0f);
  std::printf("shared_weights %s: params entries", one_entry ? "one copy" : "NOT SHARED");
  for (std::size_t i = 0; i < params.size(); ++i) std::printf(" %s", params.name(i).c_str());
  std::printf(", encoder %zu scalars, total %zu\n", params.at("embed_left").count(), params.count());
  std::printf("symmetric %s (the two images swapped give the same logits bit for bit)\n",
              symmetric ? "yes" : "NO");
  const double pair_accuracy = accuracy(logits, test.labels);
  std::printf("pair_accuracy %.4f\n", pair_accuracy);
  return one_entry && symmetric && pair_accuracy >= min_accuracy ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "siamese: %s\n", e.what());
  return 1;
}
