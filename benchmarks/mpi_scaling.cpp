// Training across processes over MPI, measured (docs/distributed.md): run under mpirun.
//
//   mpirun -np N mpi_scaling train --net mlp|cnn [--batch B] [--steps S] [--warmup W]
//                                  [--bucket-bytes K] [--alone]
//   mpirun -np N mpi_scaling sum [--repeats R] [--whole-large]
//
// train: S timed steps (after W warm-up steps) of the benchmark MLP (784-512-256-10) or CNN
// (benchmarks/layercache_nets.cpp's) with train_step at B samples per rank, every rank on one
// thread, on synthetic images (what the step costs does not depend on the pixels). Rank 0
// prints one JSON line: ranks, step_ms (median over the steps), samples_per_s (N·B per step).
// With --alone every rank trains by itself at B (no group): the compute a step of the group
// holds, under the same load of N processes on the machine.
// sum: the time of one sum across the ranks (start_sum + wait) of n floats, for the gradient
// sizes of both networks and powers of two from 1 to 2^24, median of R, in buckets of 1 MiB
// (and in one call with --whole-large); rank 0 prints a JSON
// line per size with the time, the algorithm bandwidth (bytes / time) and the bus bandwidth
// (2(N−1)/N · bytes / time, what a ring allreduce moves per rank).
#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "layercache/layercache.hpp"
#include "layercache/mpi.hpp"

using namespace layercache;

namespace {

Network make_net(const std::string& name) {
  if (name == "mlp")
    return Network{Dense(784, 512), ReLU(), Dense(512, 256), ReLU(), Dense(256, 10)};
  return Network{Conv2D({.in_channels = 1, .out_channels = 32, .kernel = 3}), ReLU(),
                 MaxPool2D({.kernel = 2, .stride = 2}),
                 Conv2D({.in_channels = 32, .out_channels = 64, .kernel = 3}), ReLU(),
                 MaxPool2D({.kernel = 2, .stride = 2}), Flatten(), Dense(1600, 128), ReLU(),
                 Dense(128, 10)};
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Waits for every rank (a sum of one number).
void barrier(Collective& group) {
  double x = 0;
  sum_across(group, &x, 1);
}

std::string option(int argc, char** argv, const std::string& flag, const std::string& fallback) {
  for (int i = 2; i + 1 < argc; ++i)
    if (argv[i] == flag) return argv[i + 1];
  return fallback;
}

bool has_flag(int argc, char** argv, const std::string& flag) {
  for (int i = 2; i < argc; ++i)
    if (argv[i] == flag) return true;
  return false;
}

void train(mpi::ProcessGroup& group, int argc, char** argv) {
  const std::string net_name = option(argc, argv, "--net", "mlp");
  const std::size_t batch = std::stoul(option(argc, argv, "--batch", "64"));
  const std::size_t steps = std::stoul(option(argc, argv, "--steps", "40"));
  const std::size_t warmup = std::stoul(option(argc, argv, "--warmup", "5"));
  const std::size_t bucket = std::stoul(option(argc, argv, "--bucket-bytes", "1048576"));
  const bool alone = has_flag(argc, argv, "--alone");
  const std::size_t ranks = alone ? 1 : group.size();
  const Network net = make_net(net_name);

  // Synthetic images and labels, enough for every step without reuse of a batch.
  const std::size_t n = batch * ranks * (steps + warmup);
  Dataset<float> data;
  data.shape = Shape{1, 28, 28};
  data.x = arma::randu<arma::fmat>(784, n);
  data.labels = arma::randi<arma::uvec>(n, arma::distr_param(0, 9));
  const Optimizer opt = momentum({.learning_rate = 0.01, .momentum = 0.9});
  TrainStateF run = init_train_state<float>(net, data.shape, opt, he_normal(), 1);
  Collective* g = alone ? nullptr : &group;
  if (g) broadcast(group, run);
  const BatchPlan plan = batches(n, batch * ranks, false);
  const StepOptions options{.group = g, .bucket_bytes = bucket};
  std::vector<double> times;
  barrier(group);
  const double start = MPI_Wtime();
  double timed_start = start;
  for (std::size_t s = 0; s < steps + warmup; ++s) {
    if (s == warmup) {
      barrier(group);
      timed_start = MPI_Wtime();
    }
    const double t0 = MPI_Wtime();
    train_step(net, run, opt, SoftmaxCrossEntropy(), data, plan, plan[s], options);
    if (s >= warmup) times.push_back(MPI_Wtime() - t0);
  }
  barrier(group);
  const double total = MPI_Wtime() - timed_start;
  // The slowest rank's median step decides (with --alone each rank ran by itself).
  const double step = median(times);
  std::vector<double> all(group.size(), 0.0);
  all[group.rank()] = step;
  sum_across(group, all.data(), all.size());
  const double worst = *std::max_element(all.begin(), all.end());
  if (group.rank() == 0) {
    double load = -1;
    if (FILE* f = std::fopen("/proc/loadavg", "r")) {
      if (std::fscanf(f, "%lf", &load) != 1) load = -1;
      std::fclose(f);
    }
    std::printf("{\"bench\": \"train\", \"net\": \"%s\", \"processes\": %zu, \"ranks\": %zu, "
                "\"threads\": 1, \"batch_per_rank\": %zu, \"bucket_bytes\": %zu, "
                "\"params\": %zu, \"step_ms\": %.3f, \"samples_per_s\": %.1f, "
                "\"samples_per_s_wall\": %.1f, \"load_1m\": %.2f}\n",
                net_name.c_str(), group.size(), ranks, batch, bucket, run.params.count(),
                worst * 1e3, double(batch * ranks) / worst,
                double(batch * ranks * steps) / total, load);
  }
}

void sums(mpi::ProcessGroup& group, int argc, char** argv) {
  const std::size_t repeats = std::stoul(option(argc, argv, "--repeats", "50"));
  // --whole-large: also one sum of more than 1 MiB in a single call.
  const bool whole_large = has_flag(argc, argv, "--whole-large");
  std::vector<std::size_t> sizes = {1};
  for (std::size_t n = 16; n <= (std::size_t(1) << 24); n *= 4) sizes.push_back(n);
  for (const char* name : {"mlp", "cnn"}) {
    Rng rng(1);
    sizes.push_back(make_net(name).init<float>(Shape{1, 28, 28}, he_normal(), rng).count());
  }
  std::sort(sizes.begin(), sizes.end());
  const double ranks = double(group.size());
  for (std::size_t n : sizes) {
    std::vector<float> buffer(n, 1.0f);
    // Whole: one sum of n values. Bucketed: sums of at most 1 MiB one after another, as a
    // training step starts them.
    for (const std::size_t bucket : {n, std::size_t(1 << 20) / sizeof(float)}) {
      if (bucket == n && n > (std::size_t(1) << 20) / sizeof(float) && !whole_large) continue;
      std::vector<double> times;
      for (std::size_t r = 0; r < repeats + 3; ++r) {
        barrier(group);
        const double t0 = MPI_Wtime();
        for (std::size_t b = 0; b < n; b += bucket)
          group.start_sum(buffer.data() + b, std::min(bucket, n - b));
        group.wait();
        if (r >= 3) times.push_back(MPI_Wtime() - t0);
      }
      const double t = median(times), bytes = double(n * sizeof(float));
      if (group.rank() == 0)
        std::printf("{\"bench\": \"sum\", \"ranks\": %zu, \"floats\": %zu, \"bytes\": %.0f, "
                    "\"bucket_bytes\": %zu, \"us\": %.2f, \"algbw_gbs\": %.3f, "
                    "\"busbw_gbs\": %.3f}\n",
                    group.size(), n, bytes, std::min(bucket, n) * sizeof(float), t * 1e6,
                    bytes / t / 1e9, 2 * (ranks - 1) / ranks * bytes / t / 1e9);
      if (n <= (std::size_t(1) << 20) / sizeof(float)) break;  // one bucket: the same sum
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  mpi::Environment environment(argc, argv);
  mpi::ProcessGroup group;
  set_blas_threads(1);
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "train") {
    train(group, argc, argv);
  } else if (mode == "sum") {
    sums(group, argc, argv);
  } else {
    if (group.rank() == 0)
      std::fprintf(stderr, "usage: mpirun -np N mpi_scaling train|sum [options] (see the source)\n");
    return 2;
  }
  return 0;
}
