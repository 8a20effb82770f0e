// The Fashion-MNIST MLP of fashion_mlp trained by several processes at once over MPI
// (docs/distributed.md): every rank loads the data, fit broadcasts rank 0's run, each rank
// trains on its share of every batch and the gradients are summed across the ranks. Rank 0
// prints the progress and, last, `test_accuracy <value>`.
//
//   mpirun -np 2 fashion_mlp_mpi [--epochs N] [--batch-size N] [--learning-rate X] [--seed N]
//                                [--threads N] [--train-size N] [--data-dir DIR]
//                                [--fail-rank R] [--quiet]
//
// --batch-size is each rank's: N ranks train on batches of N × batch-size samples, the batches
// one process would see at that size. --fail-rank R gives rank R a corrupt label, to show
// every rank stopping with an error that names R.
#include <mpi.h>  // MPI_Wtime; the library itself needs nothing from it

#include <algorithm>
#include <cstdio>
#include <string>

#include "layercache/layercache.hpp"
#include "layercache/mpi.hpp"
#include "common.hpp"
#include "options.hpp"

using namespace layercache;

struct Args {
  std::size_t epochs = 12;
  std::size_t batch_size = 64;
  double learning_rate = 1e-3;
  std::uint64_t seed = 1;
  int threads = 1;
  std::size_t train_size = 0;  // 0: all 55000
  std::string data_dir = "/usr/share/datasets/fashion-mnist";
  long fail_rank = -1;
  bool quiet = false;
};

const char* const usage =
    "usage: mpirun -np N fashion_mlp_mpi [--epochs N] [--batch-size N] [--learning-rate X]\n"
    "           [--seed N] [--threads N] [--train-size N] [--data-dir DIR] [--fail-rank R]\n"
    "           [--quiet]\n"
    "Trains fashion_mlp's 784-512-256-10 MLP on Fashion-MNIST with fit() on every rank of the\n"
    "MPI job (defaults: 12 epochs, 64 samples per rank and batch, peak learning rate 1e-3,\n"
    "seed 1, 1 thread per rank, all 55000 training images). Rank 0 prints the test accuracy\n"
    "last. --fail-rank R corrupts a label on rank R: every rank stops with its error.\n";

Args parse(int argc, char** argv) {
  using examples::integer;
  Args a;
  examples::parse_options(argc, argv, usage, [&](const std::string& flag, const examples::Value& value) {
    if (flag == "--epochs") a.epochs = integer<std::size_t>(flag, value());
    else if (flag == "--batch-size") a.batch_size = integer<std::size_t>(flag, value());
    else if (flag == "--learning-rate") a.learning_rate = examples::number(flag, value());
    else if (flag == "--seed") a.seed = integer<std::uint64_t>(flag, value());
    else if (flag == "--threads") a.threads = integer<int>(flag, value());
    else if (flag == "--train-size") a.train_size = integer<std::size_t>(flag, value());
    else if (flag == "--data-dir") a.data_dir = value();
    else if (flag == "--fail-rank") a.fail_rank = integer<long>(flag, value());
    else if (flag == "--quiet") a.quiet = true;
    else return false;
    return true;
  });
  return a;
}

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);  // --help and usage errors end here, before MPI starts
  mpi::Environment environment(argc, argv);
  mpi::ProcessGroup group;  // every process of the job
  const bool root = group.rank() == 0;
  try {
    set_blas_threads(1);  // each rank's threads split its share of the batch

    // Every rank reads the whole data set and splits it alike (the same seed); fit deals
    // out the batches.
    const Dataset<float> all_train = load_fashion_mnist<float>(args.data_dir, "train");
    const Dataset<float> test = load_fashion_mnist<float>(args.data_dir, "test");
    Rng rng(args.seed);
    auto [train, validation] = train_validation_split(all_train, 5000.0 / 60000.0, rng);
    examples::keep_first(train, args.train_size);
    if (args.fail_rank == long(group.rank())) train.labels[17] = 42;

    const Network net{Dense(784, 512), ReLU(), Dense(512, 256), ReLU(), Dense(256, 10)};
    const std::size_t global_batch = args.batch_size * group.size();
    const auto steps = examples::steps_of(args.epochs, train.size(), global_batch);
    const Optimizer optimizer =
        adam({.learning_rate = examples::warmup_cosine(args.learning_rate, steps)});
    // Every rank makes a run; fit replaces the others' by rank 0's before the first step.
    TrainStateF run = init_train_state<float>(net, train.shape, optimizer, he_normal(), args.seed);
    if (root) std::printf("ranks %zu, batch %zu per rank (%zu in all)\n", group.size(),
                          args.batch_size, global_batch);
    std::fflush(stdout);  // before fit's progress on stderr
    const double start = MPI_Wtime();
    fit(net, run, optimizer, SoftmaxCrossEntropy(), train,
        {.epochs = args.epochs,
         .batch_size = args.batch_size,
         .validation = &validation,
         .progress = args.quiet ? Progress::silent : Progress::lines,
         .threads = std::size_t(std::max(args.threads, 1)),
         .group = &group});
    const double seconds = MPI_Wtime() - start;
    const Metrics m = evaluate(net, run.params, run.state, SoftmaxCrossEntropy(), test, 1024, 1, &group);
    if (root) {
      std::printf("training_seconds %.1f\n", seconds);
      std::printf("samples_per_second %.0f\n", double(train.size() * args.epochs) / seconds);
      std::printf("test_loss %.4f\n", m.loss);
      std::printf("test_accuracy %.4f\n", m.accuracy);
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fashion_mlp_mpi (rank %zu): %s\n", group.rank(), e.what());
    return 1;
  }
}
