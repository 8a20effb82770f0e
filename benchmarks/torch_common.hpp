// Shared driver for the libtorch twins (torch_mlp, torch_cnn, torch_cnn_bn, torch_lstm):
// threads, data, timed train / infer loops, JSON.
//
// Header-only so that the benchmark support library stays free of libtorch (CI builds it
// without libtorch). All twins time exactly the same loop and print the same fields; only the
// network differs.
//
// What one timed training epoch contains (and what it does not):
//   * contains, per mini-batch: gathering the shuffled samples (index_select), zero_grad,
//     forward, cross-entropy on logits, backward, SGD-momentum step, reading the loss value;
//   * excludes: building the epoch's permutation (lcbench::permutation, the same order every
//     implementation uses for a given seed; ~1 ms) and anything before or after the loop.
// The last mini-batch of an epoch may be partial (60000 is not a multiple of 128 or 512).
// With --max-samples N only the first ceil(N/B) batches are timed and the time is scaled to
// the full epoch: epoch_s = t × samples_per_epoch / samples_timed.
//
// Contention: the machine may be shared. epoch_cpu_s is this process's CPU time per epoch (all
// threads) and other_busy_frac the share of all cores that other processes kept busy during the
// timed epochs; with --threads 1, epoch_cpu_s ≈ epoch_s and other_busy_frac ≈ 0 on a quiet machine.
//
// Threads: torch::set_num_threads sets the OpenMP pool (oneDNN convolutions, element-wise
// kernels) but not OpenBLAS, which libtorch on Debian calls for Linear layers (addmm -> sgemm_)
// through its own pthread pool; openblas_set_num_threads is therefore called as well, so
// "--threads 1" means one core for everything.
//
// With --threads 2 on a 2-core machine, libgomp's default spin-waiting (OMP_WAIT_POLICY unset)
// makes libtorch's idle OpenMP worker compete with OpenBLAS's worker thread for the second core:
// the MLP then trains several times slower than with one thread. Run it with
// OMP_WAIT_POLICY=PASSIVE as well (run_baseline.sh does both) and take the better of the two
// as libtorch's best; the JSON records the policy in "omp_wait_policy".
#pragma once

#include "alloc_counter.hpp"
#include "bench_common.hpp"
#include "peak_rss.hpp"

#include <torch/torch.h>
#include <torch/version.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

extern "C" void openblas_set_num_threads(int);
extern "C" int openblas_get_num_threads(void);
extern "C" char* openblas_get_corename(void);

namespace lcbench::torchbench {

// libgomp reads OMP_WAIT_POLICY when it is loaded, before main, so it cannot be set from here;
// it is recorded because it decides libtorch's 2-thread speed on a 2-core machine (see README).
inline std::string omp_wait_policy() {
  const char* p = std::getenv("OMP_WAIT_POLICY");
  return p && *p ? p : "default";
}

inline void set_threads(int threads) {
  // Must run before any parallel work: the inter-op pool can be sized only once.
  at::set_num_interop_threads(threads);
  torch::set_num_threads(threads);
  openblas_set_num_threads(threads);
}

// Fashion-MNIST split as tensors that alias the Dataset's memory (no copy): x is
// (n, sample_shape...) float32, y is (n) int64.
struct TensorData {
  Dataset raw;
  std::vector<std::int64_t> labels64;
  torch::Tensor x, y;
};

inline TensorData load(const Options& opt, const std::string& split, const std::vector<std::int64_t>& sample_shape) {
  TensorData d;
  d.raw = load_fashion_mnist(opt.data_dir, split);
  d.labels64.assign(d.raw.labels.begin(), d.raw.labels.end());
  std::vector<std::int64_t> shape = {static_cast<std::int64_t>(d.raw.n)};
  shape.insert(shape.end(), sample_shape.begin(), sample_shape.end());
  d.x = torch::from_blob(d.raw.pixels.data(), shape, torch::kFloat32);
  d.y = torch::from_blob(d.labels64.data(), {static_cast<std::int64_t>(d.raw.n)}, torch::kInt64);
  return d;
}

struct EpochResult {
  double seconds = 0;
  double mean_loss = 0;
  std::size_t samples = 0;
};

template <typename Net>
EpochResult train_epoch(Net& net, torch::optim::Optimizer& sgd, const TensorData& data, std::size_t batch,
                        std::size_t n_batches, std::uint64_t perm_seed) {
  const auto n = static_cast<std::int64_t>(data.raw.n);
  std::vector<std::int64_t> perm = permutation(data.raw.n, perm_seed);
  const torch::Tensor order = torch::from_blob(perm.data(), {n}, torch::kInt64);
  const auto B = static_cast<std::int64_t>(batch);

  EpochResult r;
  double loss_sum = 0;
  const auto t0 = Clock::now();
  for (std::size_t b = 0; b < n_batches; ++b) {
    const std::int64_t lo = static_cast<std::int64_t>(b) * B;
    const std::int64_t hi = std::min(lo + B, n);
    const torch::Tensor idx = order.slice(0, lo, hi);
    const torch::Tensor xb = data.x.index_select(0, idx);
    const torch::Tensor yb = data.y.index_select(0, idx);
    sgd.zero_grad();
    const torch::Tensor loss = torch::nn::functional::cross_entropy(net->forward(xb), yb);
    loss.backward();
    sgd.step();
    loss_sum += loss.template item<double>() * double(hi - lo);
    r.samples += static_cast<std::size_t>(hi - lo);
  }
  r.seconds = seconds_since(t0);
  r.mean_loss = loss_sum / double(r.samples);
  return r;
}

// Heap allocations (operator new + malloc family, all threads) per steady-state training step,
// averaged over `steps` full-size steps. Runs after timing, so counting never perturbs a timed loop.
template <typename Net>
double allocations_per_step(Net& net, torch::optim::Optimizer& sgd, const TensorData& data, std::size_t batch, int steps) {
  const auto B = static_cast<std::int64_t>(batch);
  const torch::Tensor idx = torch::arange(B, torch::kInt64);
  auto step = [&] {
    const torch::Tensor xb = data.x.index_select(0, idx);
    const torch::Tensor yb = data.y.index_select(0, idx);
    sgd.zero_grad();
    const torch::Tensor loss = torch::nn::functional::cross_entropy(net->forward(xb), yb);
    loss.backward();
    sgd.step();
    return loss.template item<double>();
  };
  step();  // make sure every lazily created buffer already exists
  alloc::reset();
  alloc::enable();
  for (int i = 0; i < steps; ++i) step();
  alloc::disable();
  return double(alloc::counts().allocations()) / steps;
}

template <typename Net>
double infer_pass(Net& net, const TensorData& data, std::size_t batch, std::size_t n_batches, std::size_t& samples) {
  const auto n = static_cast<std::int64_t>(data.raw.n);
  const auto B = static_cast<std::int64_t>(batch);
  samples = 0;
  torch::Tensor out;
  const auto t0 = Clock::now();
  for (std::size_t b = 0; b < n_batches; ++b) {
    const std::int64_t lo = static_cast<std::int64_t>(b) * B;
    const std::int64_t hi = std::min(lo + B, n);
    out = net->forward(data.x.slice(0, lo, hi));  // a contiguous view, no copy
    samples += static_cast<std::size_t>(hi - lo);
  }
  const double s = seconds_since(t0);
  if (out.numel() == 0) std::fprintf(stderr, "empty output\n");  // keep `out` observable
  return s;
}

// Runs the benchmark selected by opt.mode for a network built by make_net() and prints one
// JSON line. `name` is the case's network ("mlp", "cnn", "cnn_bn", "lstm"); sample_shape is
// the per-sample input shape.
template <typename MakeNet>
int run(const Options& opt, const std::string& name, const std::vector<std::int64_t>& sample_shape, MakeNet make_net) {
  const double load_start = loadavg_1m();
  set_threads(opt.threads);
  torch::manual_seed(opt.seed);
  const bool train = opt.mode == "train";

  const TensorData data = load(opt, train ? "train" : "t10k", sample_shape);
  const double rss_after_load = current_rss_mb();
  auto net = make_net();

  const std::size_t n = data.raw.n;
  const std::size_t n_batches = batches_to_time(n, opt.batch, opt.max_samples);
  std::vector<double> epoch_s, epoch_cpu_s;
  Contention contention;  // how much of the machine other processes used while we timed
  std::size_t samples_timed = 0;
  double last_loss = -1, allocs = -1;

  if (train) {
    net->train();
    torch::optim::SGD sgd(net->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
    std::uint64_t epoch = 0;
    for (int w = 0; w < opt.warmup; ++w) train_epoch(net, sgd, data, opt.batch, n_batches, opt.seed + epoch++);
    for (int e = 0; e < opt.epochs; ++e) {
      contention.start();
      const double cpu0 = process_cpu_seconds();
      const EpochResult r = train_epoch(net, sgd, data, opt.batch, n_batches, opt.seed + epoch++);
      const double cpu = process_cpu_seconds() - cpu0;
      contention.stop();
      samples_timed = r.samples;
      const double scale = double(n) / double(r.samples);  // extrapolates a partial epoch
      epoch_s.push_back(r.seconds * scale);
      epoch_cpu_s.push_back(cpu * scale);
      last_loss = r.mean_loss;
    }
    allocs = allocations_per_step(net, sgd, data, opt.batch, 5);
  } else {
    net->eval();
    torch::NoGradGuard no_grad;
    for (int w = 0; w < opt.warmup; ++w) infer_pass(net, data, opt.batch, n_batches, samples_timed);
    for (int e = 0; e < opt.epochs; ++e) {
      contention.start();
      const double cpu0 = process_cpu_seconds();
      const double s = infer_pass(net, data, opt.batch, n_batches, samples_timed);
      const double cpu = process_cpu_seconds() - cpu0;
      contention.stop();
      const double scale = double(n) / double(samples_timed);
      epoch_s.push_back(s * scale);
      epoch_cpu_s.push_back(cpu * scale);
    }
  }

  const std::string case_name = name + (train ? "_b" : "_infer_b") + std::to_string(opt.batch);
  JsonLine j;
  j.str("impl", "torch")
      .str("case", case_name)
      .str("mode", opt.mode)
      .integer("threads", opt.threads)
      .integer("torch_threads", torch::get_num_threads())
      .integer("interop_threads", at::get_num_interop_threads())
      .integer("openblas_threads", openblas_get_num_threads())
      .str("blas_core", openblas_get_corename())
      .str("omp_wait_policy", omp_wait_policy())
      .integer("batch", static_cast<long long>(opt.batch))
      .integer("warmup", opt.warmup)
      .str("set", train ? "train" : "test");
  add_timing(j, n, samples_timed, epoch_s, epoch_cpu_s, contention, load_start);
  if (train) j.num("last_epoch_loss", last_loss).num("allocs_per_step", allocs);
  j.num("rss_after_load_mb", rss_after_load)
      .num("peak_rss_mb", peak_rss_mb())
      .str("torch_version", TORCH_VERSION)
      .print();
  return 0;
}

}  // namespace lcbench::torchbench
