// GEMM roofline for the 784-512-256-10 MLP: the fastest possible epoch if only the matrix products took time.
//
// Every GEMM of one training step is timed through Armadillo (arma::fmat expressions, which
// Armadillo lowers to OpenBLAS sgemm_ with transpose flags; glue_times -> gemm<>::apply_blas_type
// -> blas::gemm -> sgemm_), at the shapes layercache uses (columns are samples):
//
//   layer l with W (n_out × n_in), X (n_in × B), dY (n_out × B)
//     forward   Y  = W  · X      m = n_out, n = B,    k = n_in
//     weights   dW = dY · Xᵀ     m = n_out, n = n_in, k = B
//     input     dX = Wᵀ · dY     m = n_in,  n = B,    k = n_out   (not for the first layer)
//
// Each GEMM is repeated on the same (cache-warm) operands; its per-call time is the minimum /
// median over --repeats samples. roofline_epoch_s = (60000 / B) × Σ best per-call times: no
// implementation that performs these products with this BLAS can train an epoch faster, so the
// ratio layercache_epoch / roofline_epoch is the share of time spent outside the products.
//
// With --threads T > 1, --strategy says how the T cores share the products: "blas" runs each
// product once with a T-thread BLAS; "data" (the default, as train_step with
// Split::batch) splits the batch into T column shards and runs each product on all shards
// at the same time, one single-threaded BLAS call per thread; "layers" (as Split::layers)
// gives each thread a block of rows of every product's result, over the whole batch (of
// W for the forward and weight-gradient products, of Wᵀ for the input gradient), in blocks
// of 16 rows. A call's time is then the wall time until every thread's part is done.
// benchmarks/run takes the smallest of the rooflines.
//
// --evict-kb N makes each thread write N KiB of its own before every timed call (timed one
// at a time), so that the operands come from the shared L3 cache or memory as they do inside
// a training step, where the whole step's data passes through the caches between two uses
// of a weight matrix (with --strategy blas, only the calling thread evicts). It is a
// diagnostic: the roofline benchmarks/run reports is the warm one.
//
// Usage: gemm_roofline --batch 128 --threads 1 [--repeats 25] [--strategy data|layers|blas] [--evict-kb N]
#include "bench_common.hpp"

#include <armadillo>

#include <algorithm>
#include <barrier>
#include <cstdio>
#include <functional>
#include <string>
#include <thread>
#include <vector>

// From OpenBLAS (<cblas.h> declares it too, but its path differs between the Debian BLAS
// flavours; the symbol is the same in all of them).
extern "C" void openblas_set_num_threads(int);
extern "C" int openblas_get_num_threads(void);
extern "C" char* openblas_get_corename(void);

namespace {

constexpr double train_samples = 60000.0;

struct Gemm {
  std::string name;
  arma::uword m, n, k;
  std::function<void()> run;
  double flops() const { return 2.0 * double(m) * double(n) * double(k); }
};

// Operands of one dense layer; kept alive for the whole run so timing never allocates.
struct Layer {
  arma::fmat W, X, Y, dY, dW, dX;
  Layer(arma::uword n_in, arma::uword n_out, arma::uword batch)
      : W(n_out, n_in, arma::fill::randu), X(n_in, batch, arma::fill::randu), Y(n_out, batch),
        dY(n_out, batch, arma::fill::randu), dW(n_out, n_in), dX(n_in, batch) {}
  void input_gradient() { dX = W.t() * dY; }
};

// Task t of T takes items [begin, end) of n in whole blocks of 16 (the split of Dense).
std::pair<arma::uword, arma::uword> share(arma::uword n, std::size_t t, std::size_t T) {
  const arma::uword blocks = (n + 15) / 16;
  return {std::min<arma::uword>(n, blocks * t / T * 16), std::min<arma::uword>(n, blocks * (t + 1) / T * 16)};
}

// Operands of thread t's part of one dense layer's products with --strategy layers: rows
// [r0, r1) of W (forward, weight gradient) and columns [c0, c1) of W (input gradient).
struct RowLayer {
  arma::fmat W, X, Y, dY, dW, Wc, dYfull, dX;
  RowLayer(arma::uword n_in, arma::uword n_out, arma::uword batch, std::size_t t, std::size_t T)
      : W(share(n_out, t, T).second - share(n_out, t, T).first, n_in, arma::fill::randu),
        X(n_in, batch, arma::fill::randu), Y(W.n_rows, batch),
        dY(W.n_rows, batch, arma::fill::randu), dW(W.n_rows, n_in),
        Wc(n_out, share(n_in, t, T).second - share(n_in, t, T).first, arma::fill::randu),
        dYfull(n_out, batch, arma::fill::randu), dX(Wc.n_cols, batch) {}
  void input_gradient() { dX = Wc.t() * dYfull; }
};

// Seconds per call of running gs[t] on thread t for every t at the same time (one entry:
// on the calling thread alone): `iters` back-to-back calls per sample, so that even the
// 10-row GEMMs are timed over a few milliseconds and clock resolution does not matter.
// With eviction buffers (one per thread, non-empty), every sample is one call, and each
// thread first writes its buffer, which pushes the operands out of its L2 cache.
std::vector<double> time_gemms(const std::vector<const Gemm*>& gs, int repeats,
                               std::vector<std::vector<unsigned char>>& evict) {
  for (const Gemm* g : gs)
    for (int i = 0; i < 3; ++i) g->run();  // warm caches and OpenBLAS's thread pool
  auto t0 = lcbench::Clock::now();
  gs[0]->run();
  const double once = std::max(lcbench::seconds_since(t0), 1e-7);
  const bool cold = !evict.empty() && !evict[0].empty();
  const int iters = cold ? 1 : std::max(1, static_cast<int>(2e-3 / once));
  std::vector<double> per_call;
  per_call.reserve(static_cast<std::size_t>(repeats));
  std::barrier sync(static_cast<std::ptrdiff_t>(gs.size()));
  auto body = [&](std::size_t t) {
    for (int r = 0; r < repeats; ++r) {
      if (cold)
        for (std::size_t i = 0; i < evict[t].size(); i += 64) evict[t][i] += 1;
      sync.arrive_and_wait();  // start together
      if (t == 0) t0 = lcbench::Clock::now();
      for (int i = 0; i < iters; ++i) gs[t]->run();
      sync.arrive_and_wait();  // every shard done
      if (t == 0) per_call.push_back(lcbench::seconds_since(t0) / iters);
    }
  };
  std::vector<std::thread> threads;
  for (std::size_t t = 1; t < gs.size(); ++t) threads.emplace_back(body, t);
  body(0);
  for (auto& th : threads) th.join();
  return per_call;
}

// The GEMMs of one training step of the MLP on a batch of B columns, or one thread's parts
// of them (operands in `layers`: Layer or RowLayer).
template <class L>
std::vector<Gemm> step_gemms(std::vector<L>& layers, const std::vector<arma::uword>& sizes,
                             arma::uword B) {
  std::vector<Gemm> gemms;
  for (std::size_t l = 0; l < layers.size(); ++l) {
    L& op = layers[l];
    const arma::uword n_in = sizes[l], n_out = sizes[l + 1];
    const std::string p = "fc" + std::to_string(l + 1) + "_";
    gemms.push_back({p + "fwd", op.W.n_rows, B, n_in, [&op] { op.Y = op.W * op.X; }});
    gemms.push_back({p + "dW", op.W.n_rows, n_in, B, [&op] { op.dW = op.dY * op.X.t(); }});
    if (l > 0) gemms.push_back({p + "dX", op.dX.n_rows, B, n_out, [&op] { op.input_gradient(); }});
  }
  return gemms;
}

}  // namespace

int main(int argc, char** argv) {
  const lcbench::Options opt = lcbench::parse_options(argc, argv, "gemm_roofline",
      "  (uses --batch, --threads, --repeats [default 25], --seed)\n");
  const int repeats = opt.repeats > 0 ? opt.repeats : 25;
  const bool data = opt.strategy == "data" && opt.threads > 1;
  const bool rows = opt.strategy == "layers" && opt.threads > 1;
  const std::size_t shards = data || rows ? static_cast<std::size_t>(opt.threads) : 1;
  openblas_set_num_threads(data || rows ? 1 : opt.threads);
  arma::arma_rng::set_seed(opt.seed);  // operand values do not affect the rate; seeded for repeatability

  const arma::uword B = opt.batch;
  const std::vector<arma::uword> sizes = {784, 512, 256, 10};
  // One set of operands and products per shard; shard s has columns [B·s/n, B·(s+1)/n).
  // With --strategy layers, thread s has its row blocks instead.
  std::vector<std::vector<Layer>> layers(shards);
  std::vector<std::vector<RowLayer>> row_layers(shards);
  std::vector<std::vector<Gemm>> shard_gemms(shards);
  for (std::size_t s = 0; s < shards; ++s) {
    if (rows) {
      row_layers[s].reserve(sizes.size() - 1);
      for (std::size_t l = 0; l + 1 < sizes.size(); ++l)
        row_layers[s].emplace_back(sizes[l], sizes[l + 1], B, s, shards);
      shard_gemms[s] = step_gemms(row_layers[s], sizes, B);
      continue;
    }
    const arma::uword cols = B * (s + 1) / shards - B * s / shards;
    layers[s].reserve(sizes.size() - 1);
    for (std::size_t l = 0; l + 1 < sizes.size(); ++l) layers[s].emplace_back(sizes[l], sizes[l + 1], cols);
    shard_gemms[s] = step_gemms(layers[s], sizes, cols);
  }

  // Eviction buffers, one per concurrent thread (--evict-kb; empty: warm operands).
  std::vector<std::vector<unsigned char>> evict(shards, std::vector<unsigned char>(opt.evict_kb * 1024));

  std::vector<std::pair<std::string, double>> gflops_median, gflops_best, us_best;
  double step_flops = 0, step_best = 0, step_median = 0;
  const double load_start = lcbench::loadavg_1m();
  lcbench::Contention contention;  // other processes' share of the machine while timing
  for (std::size_t i = 0; i < shard_gemms[0].size(); ++i) {
    // Product i on every shard at once; its flops are the whole batch's.
    std::vector<const Gemm*> concurrent;
    double flops = 0;
    for (const auto& sg : shard_gemms) {
      concurrent.push_back(&sg[i]);
      flops += sg[i].flops();
    }
    const std::string& name = shard_gemms[0][i].name;
    contention.start();
    const std::vector<double> t = time_gemms(concurrent, repeats, evict);
    contention.stop();
    const double best = lcbench::minimum(t), med = lcbench::median(t);
    gflops_median.emplace_back(name, flops / med * 1e-9);
    gflops_best.emplace_back(name, flops / best * 1e-9);
    us_best.emplace_back(name, best * 1e6);
    step_flops += flops;
    step_best += best;
    step_median += med;
  }

  const double steps_per_epoch = train_samples / double(B);  // 60000/B, as a real number
  lcbench::JsonLine()
      .str("impl", "armadillo+openblas")
      .str("case", "gemm_roofline_b" + std::to_string(B))
      .integer("threads", opt.threads)
      .str("strategy", rows ? "layers" : data ? "data" : "blas")
      .integer("openblas_threads", openblas_get_num_threads())
      .str("blas_core", openblas_get_corename())
      .integer("batch", static_cast<long long>(B))
      .integer("repeats", repeats)
      .integer("evict_kb", static_cast<long long>(opt.evict_kb))
      .object("gflops", gflops_median)
      .object("gflops_best", gflops_best)
      .object("gemm_us_best", us_best)
      .num("step_gflop", step_flops * 1e-9)
      .num("step_s_best", step_best)
      .num("step_gflops_best", step_flops / step_best * 1e-9)
      .num("steps_per_epoch", steps_per_epoch)
      .num("roofline_epoch_s", steps_per_epoch * step_best)
      .num("roofline_epoch_s_median", steps_per_epoch * step_median)
      .num("other_busy_frac", contention.other_busy_frac())
      .num("loadavg_1m_start", load_start)
      .print();
  return 0;
}
