// Forward+backward time of the benchmark CNN at one batch size, per step and per layer.
//
// The CNN of torch_cnn.cpp: conv(1→32, 3×3) – ReLU – maxpool 2 – conv(32→64, 3×3) – ReLU –
// maxpool 2 – flatten – dense(1600→128) – ReLU – dense(128→10), float, on random images
// (1, 28, 28). One step is a training forward and a backward (no input gradient for the first
// layer) written into last step's results, as a training loop does; the loss and the optimizer
// are left out (they cost the same whatever the layers do). Prints the median and the minimum
// over the timed steps, a per-layer breakdown, and the heap allocations of a steady-state step.
// Times are wall-clock and, in brackets, processor time of the whole process (std::clock): with
// one thread on a busy machine the processor time is the one that does not count the time the
// process spent waiting for a core.
//
//   conv_micro [--batch 128] [--threads 1] [--repeats 30]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

#include "alloc_counter.hpp"
#include "bench_common.hpp"
#include "layercache/layercache.hpp"

extern "C" void openblas_set_num_threads(int);

using namespace layercache;
using Clock = std::chrono::steady_clock;

namespace {

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

double cpu_ms_since(std::clock_t c0) { return 1e3 * double(std::clock() - c0) / CLOCKS_PER_SEC; }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

arma::fmat random_matrix(std::size_t rows, std::size_t cols, Rng& rng, double low, double high) {
  arma::fmat m(rows, cols);
  for (float& v : m) v = static_cast<float>(rng.uniform(low, high));
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  const lcbench::Options opt = lcbench::parse_options(argc, argv, "conv_micro");
  openblas_set_num_threads(opt.threads);
  const int steps = opt.repeats > 0 ? opt.repeats : 30;
  const std::size_t batch = opt.batch;

  const Network cnn{Conv2D({.in_channels = 1, .out_channels = 32, .kernel = 3}), ReLU(),
                    MaxPool2D({.kernel = 2}),
                    Conv2D({.in_channels = 32, .out_channels = 64, .kernel = 3}), ReLU(),
                    MaxPool2D({.kernel = 2}),
                    Flatten(),
                    Dense(1600, 128), ReLU(),
                    Dense(128, 10)};
  const Shape in{1, 28, 28};
  Rng rng(opt.seed);
  const Tree<float> params = cnn.init<float>(in, he_normal(), rng);
  const arma::fmat x = random_matrix(in.size(), batch, rng, 0.0, 1.0);
  const arma::fmat dy = random_matrix(10, batch, rng, -0.01, 0.01);

  Context ctx;
  ctx.rng = &rng;
  Needs needs;
  needs.input = false;  // the first layer's input gradient is never needed in training
  ForwardResult<float> fwd;
  BackwardResult<float> bwd;
  auto step = [&] {
    cnn.forward(params, x, in, ctx, fwd);
    cnn.backward(params, *fwd.cache, dy, needs, bwd);
  };
  for (int i = 0; i < 3; ++i) step();

  std::vector<double> step_ms, forward_ms, step_cpu, forward_cpu;
  for (int i = 0; i < steps; ++i) {
    const auto t0 = Clock::now();
    const std::clock_t c0 = std::clock();
    cnn.forward(params, x, in, ctx, fwd);
    forward_ms.push_back(ms_since(t0));
    forward_cpu.push_back(cpu_ms_since(c0));
    cnn.backward(params, *fwd.cache, dy, needs, bwd);
    step_ms.push_back(ms_since(t0));
    step_cpu.push_back(cpu_ms_since(c0));
  }
  std::uint64_t allocations = 0;
  {
    lcbench::alloc::Scope count;
    step();
    allocations = count.counts().allocations();
  }

  // Per layer: each child run alone on the activation the network gave it.
  const auto& cache = dynamic_cast<const NetworkCache<float>&>(*fwd.cache);
  std::printf("layer          forward ms  backward ms   [processor ms]  (median of %d, batch %zu, %d thread%s)\n",
              steps, batch, opt.threads, opt.threads == 1 ? "" : "s");
  const auto parts = cnn.parts(in);
  for (std::size_t i = 0; i < cnn.size(); ++i) {
    const Layer& layer = cnn.layer(i);
    const ConstBuffer<float> input =
        i == 0 ? std::make_shared<const arma::fmat>(x) : cache.steps[i - 1].output;
    const Tree<float>& p = params.child(i);
    ForwardResult<float> f;
    BackwardResult<float> b;
    Needs n;
    n.input = i > 0;
    const arma::fmat d = arma::ones<arma::fmat>(cache.steps[i].y().n_rows, batch) * 1e-3f;
    std::vector<double> tf, tb, cf, cb;
    for (int r = 0; r < steps + 2; ++r) {
      auto t0 = Clock::now();
      std::clock_t c0 = std::clock();
      layer.forward_into(p, Tree<float>{}, input, parts[i].input, ctx, f);
      const double a = ms_since(t0), ca = cpu_ms_since(c0);
      prepare_grads(p, n, b.grads);
      t0 = Clock::now();
      c0 = std::clock();
      layer.backward_into(p, *f.cache, d, n, b);
      if (r >= 2) {
        tf.push_back(a);
        cf.push_back(ca);
        tb.push_back(ms_since(t0));
        cb.push_back(cpu_ms_since(c0));
      }
    }
    std::printf("%-14s %10.3f %12.3f   [%6.3f %6.3f]\n", cnn.name(i).c_str(), median(tf), median(tb),
                median(cf), median(cb));
  }
  std::printf("forward (train): median %.2f ms [%.2f]\n", median(forward_ms), median(forward_cpu));
  std::printf("forward+backward: median %.2f ms [%.2f], min %.2f ms [%.2f] per step of %zu samples\n",
              median(step_ms), median(step_cpu), *std::min_element(step_ms.begin(), step_ms.end()),
              *std::min_element(step_cpu.begin(), step_cpu.end()), batch);
  std::printf("heap allocations in a steady-state step: %llu\n",
              static_cast<unsigned long long>(allocations));
  return 0;
}
