// A training run that checkpoints every epoch and, started again, resumes from its latest
// checkpoint: scripts/check_resume_after_kill kills it with SIGKILL mid-run, starts it again
// and compares the params it ends with against an uninterrupted run's, byte for byte.
//
//   killed_fit DIR EPOCHS THREADS OUT [PAUSE_MS]
//
// Trains on 2000 points of two interleaved spirals, saving DIR/epoch-NNNNNN.h5 after every
// epoch (save_checkpoints), and writes the final params to OUT (save_params). Prints "fresh
// run" or "resumed after epoch K" first. PAUSE_MS (default 0) sleeps after each epoch's
// checkpoint, so that a kill lands mid-run on any machine.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <thread>
#include <tuple>

#include "layercache/layercache.hpp"
#include "support/labelled_points.hpp"

using namespace layercache;

namespace {

// Two spirals of n/2 points each, wound around each other, with a little noise.
Dataset<float> spirals(std::size_t n) {
  return testing_data::labelled_points(n, 2, 17, [n](std::size_t i, Rng& rng) {
    const double t = 0.5 + 3.0 * double(i / 2) / double(n / 2), turn = (i % 2) * 3.14159265;
    // Braces: the two draws are made in this order.
    return std::tuple{t * std::cos(2 * t + turn) + rng.normal(0, 0.1),
                      t * std::sin(2 * t + turn) + rng.normal(0, 0.1), unsigned(i % 2)};
  });
}

}  // namespace

int main(int argc, char** argv) try {
  if (argc < 5 || argc > 6) {
    std::fprintf(stderr, "usage: killed_fit DIR EPOCHS THREADS OUT [PAUSE_MS]\n");
    return 2;
  }
  const std::string dir = argv[1], out = argv[4];
  const std::size_t epochs = std::stoul(argv[2]), threads = std::stoul(argv[3]);
  const int pause_ms = argc == 6 ? std::stoi(argv[5]) : 0;

  const Dataset<float> train = spirals(2000);
  const Network net{Dense(2, 32), Tanh(), Dense(32, 32), Tanh(), Dense(32, 2)};
  const Optimizer optimizer =
      adam({.learning_rate = cosine_decay({.peak_value = 0.01, .decay_steps = 1000})});
  TrainStateF run = init_train_state<float>(net, train.shape, optimizer, he_normal(), 5);
  if (const std::string latest = latest_checkpoint(dir); !latest.empty()) {
    run = load_train_state<float>(latest);
    std::printf("resumed after epoch %lld\n", static_cast<long long>(run.epoch));
  } else {
    std::printf("fresh run\n");
  }
  std::fflush(stdout);

  FitOptions<float> options{.epochs = epochs, .batch_size = 50, .progress = Progress::silent,
                            .threads = threads};
  options.callbacks.push_back(save_checkpoints<float>({.directory = dir, .keep_last = 2}));
  options.callbacks.push_back([pause_ms](const EpochLog&, FitContext<float>&) {
    std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms));
  });
  fit(net, run, optimizer, SoftmaxCrossEntropy(), train, options);
  save_params(out, run.params);
  std::printf("finished epoch %lld, loss %.4f\n", static_cast<long long>(run.epoch),
              run.history.epochs.back().loss);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "killed_fit: %s\n", e.what());
  return 1;
}
