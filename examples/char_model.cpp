// A character-level language model of English words (Debian package wamerican,
// /usr/share/dict/american-english): Embedding → LSTM → a dense layer at every step predicts
// each next letter, trained with a hand-written loop on padded batches of words of different
// lengths (Context::lengths, SequenceSoftmaxCrossEntropy). It compares the held-out negative
// log-likelihood per character (nats; the end of a word counts as a character) with a
// bigram-count model computed here from the same training words, prints a few words it
// invents, and last `relative_improvement <1 − model / bigram>`.
//
//   char_model [--epochs N] [--hidden N] [--batch-size N] [--learning-rate X] [--words N]
//              [--seed N] [--threads N] [--dictionary FILE]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "layercache/layercache.hpp"
#include "common.hpp"
#include "options.hpp"

using namespace layercache;

struct Args {
  std::size_t epochs = 4;
  std::size_t hidden = 128;
  std::size_t batch_size = 64;
  double learning_rate = 3e-3;
  std::size_t words = 0;  // 0: every word of the list
  std::uint64_t seed = 1;
  int threads = 1;
  std::string dictionary = "/usr/share/dict/american-english";
};

const char* const usage =
    "usage: char_model [--epochs N] [--hidden N] [--batch-size N] [--learning-rate X]\n"
    "                  [--words N] [--seed N] [--threads N] [--dictionary FILE]\n"
    "Trains Embedding(27, 32) → LSTM(32 → hidden) → Dense(hidden → 27) at every step on the\n"
    "lowercase words of FILE (default /usr/share/dict/american-english; 90% to train, 10%\n"
    "held out; --words N: a random N of them), defaults 4 epochs, 128 hidden units, batch 64,\n"
    "peak learning rate 3e-3, seed 1, 1 BLAS thread. Prints the held-out NLL per character of\n"
    "the model and of a bigram-count model, invented words, and the relative improvement last.\n";

Args parse(int argc, char** argv) {
  using examples::integer;
  Args a;
  examples::parse_options(argc, argv, usage, [&](const std::string& flag, const examples::Value& value) {
    if (flag == "--epochs") a.epochs = integer<std::size_t>(flag, value());
    else if (flag == "--hidden") a.hidden = integer<std::size_t>(flag, value());
    else if (flag == "--batch-size") a.batch_size = integer<std::size_t>(flag, value());
    else if (flag == "--learning-rate") a.learning_rate = examples::number(flag, value());
    else if (flag == "--words") a.words = integer<std::size_t>(flag, value());
    else if (flag == "--seed") a.seed = integer<std::uint64_t>(flag, value());
    else if (flag == "--threads") a.threads = integer<int>(flag, value());
    else if (flag == "--dictionary") a.dictionary = value();
    else return false;
    return true;
  });
  return a;
}

// Ids: 0 marks a word's boundary (the input before its first letter, the target after its
// last), 1–26 are the letters a–z.
constexpr std::size_t n_ids = 27;

// The words of the list made of the letters a–z alone (no names, no possessives, no accents).
std::vector<std::string> read_words(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw IoError("cannot open the word list (install Debian's wamerican)", path);
  std::vector<std::string> words;
  for (std::string w; std::getline(in, w);)
    if (!w.empty() && std::all_of(w.begin(), w.end(), [](char c) { return c >= 'a' && c <= 'z'; }))
      words.push_back(w);
  return words;
}

// A padded batch of words: inputs (T × batch) boundary then letters, per-step labels the
// letters then the boundary (padding steps `pad`), lengths = letters + 1.
struct WordBatch {
  arma::fmat x;
  arma::uvec labels;
  arma::uvec lengths;
  std::size_t steps = 0;
};

WordBatch make_batch(const std::vector<std::string>& words, const std::vector<std::size_t>& order,
                 std::size_t begin, std::size_t end, arma::uword pad) {
  WordBatch b;
  for (std::size_t i = begin; i < end; ++i) b.steps = std::max(b.steps, words[order[i]].size() + 1);
  const std::size_t n = end - begin;
  b.x.zeros(b.steps, n);
  b.labels.set_size(b.steps * n);
  b.labels.fill(pad);
  b.lengths.set_size(n);
  for (std::size_t j = 0; j < n; ++j) {
    const std::string& w = words[order[begin + j]];
    b.lengths[j] = w.size() + 1;
    for (std::size_t t = 0; t < w.size(); ++t) {
      b.x(t + 1, j) = float(w[t] - 'a' + 1);
      b.labels[j * b.steps + t] = arma::uword(w[t] - 'a' + 1);
    }
    b.labels[j * b.steps + w.size()] = 0;
  }
  return b;
}

// Bigram counts with add-α smoothing: −log p(next | previous), averaged over every
// predicted character of `test`; α is the best of a few on the held-out words (the baseline
// is given every advantage).
double bigram_nll(const std::vector<std::string>& train, const std::vector<std::string>& test,
                  double& best_alpha) {
  arma::mat counts(n_ids, n_ids, arma::fill::zeros);  // (previous, next)
  const auto each_pair = [](const std::string& w, auto f) {
    std::size_t previous = 0;
    for (char c : w) {
      const std::size_t next = std::size_t(c - 'a' + 1);
      f(previous, next);
      previous = next;
    }
    f(previous, 0);
  };
  for (const auto& w : train) each_pair(w, [&](std::size_t p, std::size_t n) { counts(p, n) += 1; });
  const arma::vec totals = arma::sum(counts, 1);
  double best = INFINITY;
  for (double alpha : {0.01, 0.1, 0.5, 1.0}) {
    double sum = 0;
    std::size_t chars = 0;
    for (const auto& w : test)
      each_pair(w, [&](std::size_t p, std::size_t n) {
        sum -= std::log((counts(p, n) + alpha) / (totals[p] + alpha * double(n_ids)));
        ++chars;
      });
    if (sum / double(chars) < best) {
      best = sum / double(chars);
      best_alpha = alpha;
    }
  }
  return best;
}

int main(int argc, char** argv) try {
  const Args args = parse(argc, argv);
  set_blas_threads(args.threads);
  Rng rng(args.seed);
  std::vector<std::string> words = read_words(args.dictionary);
  for (std::size_t i = words.size(); i > 1; --i) std::swap(words[i - 1], words[rng.below(i)]);
  if (args.words > 0 && args.words < words.size()) words.resize(args.words);
  const std::size_t n_test = words.size() / 10;
  const std::vector<std::string> test(words.begin(), words.begin() + std::ptrdiff_t(n_test));
  const std::vector<std::string> train(words.begin() + std::ptrdiff_t(n_test), words.end());
  std::printf("words %zu for training, %zu held out\n", train.size(), test.size());

  const Network net{Embedding(n_ids, 32),
                    LSTM({.n_in = 32, .n_hidden = args.hidden, .return_sequences = true}),
                    TimeDistributed(Dense(args.hidden, n_ids))};
  const SequenceSoftmaxCrossEntropy loss({.n_classes = n_ids});
  const arma::uword pad = loss.options().padding;
  TreeF params = net.init(Shape{1}, xavier_uniform(), rng);
  const std::size_t batches = (train.size() + args.batch_size - 1) / args.batch_size;
  const auto steps = examples::steps_of(args.epochs, train.size(), args.batch_size);
  const Optimizer optimizer =
      chain({clip_by_global_norm(1.0),
             adam({.learning_rate = examples::warmup_cosine(args.learning_rate, steps)})});
  OptState<float> opt_state = optimizer.init(params);

  // The padded batches of one epoch, each in its own order; results reused across steps.
  std::vector<std::size_t> order(train.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  ForwardResult<float> fwd;
  BackwardResult<float> bwd;
  arma::fmat dy;
  Needs needs;
  needs.input = false;  // ids have no gradient
  for (std::size_t epoch = 1; epoch <= args.epochs; ++epoch) {
    for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);
    double loss_sum = 0;
    for (std::size_t begin = 0; begin < train.size(); begin += args.batch_size) {
      const WordBatch b = make_batch(train, order, begin, std::min(begin + args.batch_size, train.size()), pad);
      const Context ctx{.mode = Mode::train, .rng = &rng, .lengths = &b.lengths};
      net.forward(params, b.x, Shape{b.steps}, ctx, fwd);
      loss_sum += loss.value_and_grad(fwd.y(), b.labels, dy);
      net.backward(params, *fwd.cache, dy, needs, bwd);
      optimizer.update(params, bwd.grads, opt_state);
    }
    std::printf("epoch %zu  training loss %.4f\n", epoch, loss_sum / double(batches));
    std::fflush(stdout);
  }

  // Held-out NLL per character: forward in infer mode (infer has no lengths).
  std::vector<std::size_t> test_order(test.size());
  for (std::size_t i = 0; i < test.size(); ++i) test_order[i] = i;
  double nll_sum = 0;
  std::size_t chars = 0;
  for (std::size_t begin = 0; begin < test.size(); begin += 256) {
    const WordBatch b = make_batch(test, test_order, begin, std::min(begin + 256, test.size()), pad);
    const Context ctx{.mode = Mode::infer, .lengths = &b.lengths};
    net.forward(params, b.x, Shape{b.steps}, ctx, fwd);
    const std::size_t real = arma::accu(b.lengths);
    nll_sum += loss.value(fwd.y(), b.labels) * double(real);
    chars += real;
  }
  const double model = nll_sum / double(chars);
  double alpha = 0;
  const double bigram = bigram_nll(train, test, alpha);

  // Invented words: letters drawn one by one from the model's distribution until it ends the
  // word. The prefix is run whole each time (infer: every step is real).
  std::printf("invented words:");
  for (int k = 0; k < 8; ++k) {
    std::string w;
    arma::fmat x(1, 1, arma::fill::zeros);
    while (w.size() < 20) {
      const arma::fmat y = net.infer(params, x, Shape{x.n_rows});
      const arma::fvec logits = y.col(0).tail(n_ids);
      const arma::vec p = arma::exp(arma::conv_to<arma::vec>::from(logits) - double(logits.max()));
      double u = rng.uniform() * arma::accu(p);
      std::size_t next = 0;
      while (next + 1 < n_ids && (u -= p[next]) > 0) ++next;
      if (next == 0) break;
      w += char('a' + next - 1);
      x.resize(x.n_rows + 1, 1);
      x(x.n_rows - 1, 0) = float(next);
    }
    const bool known = std::find(words.begin(), words.end(), w) != words.end();
    std::printf(" %s%s", w.c_str(), known ? "" : "*");
  }
  std::printf("   (* not in the list)\n");
  std::printf("bigram_nll_per_char %.4f (add-%g smoothing)\n", bigram, alpha);
  std::printf("model_nll_per_char %.4f\n", model);
  std::printf("relative_improvement %.4f\n", 1.0 - model / bigram);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "char_model: %s\n", e.what());
  return 1;
}
