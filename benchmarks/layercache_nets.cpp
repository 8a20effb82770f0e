// layercache side of the peer benchmarks: trains (or runs inference with) the MLP or the CNN
// of the libtorch twins on Fashion-MNIST and prints one JSON line with the same fields, so
// benchmarks/run can put the two side by side. Built once per network: train_mlp
// (-DLC_BENCH_NET=mlp), train_cnn, train_resnet (the MLP with residual blocks, which has
// no twin: it measures what the combinators cost, allocations per step above all) and
// train_cnn_bn (the CNN with BatchNorm after each convolution and Dropout before the last
// layer: what state and masks cost, and that a step with them allocates nothing) and
// train_lstm (an LSTM reading each image as 28 steps of its 28 rows, its last hidden state
// classified by a dense layer); --mode infer measures inference throughput.
//
// A timed training epoch contains, per mini-batch: gathering the shuffled samples
// (inside the data-set train_step, on the shards' threads), forward, softmax cross-entropy on the logits, backward, the SGD-momentum
// update and reading the loss value; the same work as the twins' loop.
#include <cstdio>
#include <string>
#include <vector>

#include "alloc_counter.hpp"
#include "bench_common.hpp"
#include "layercache/layercache.hpp"
#include "peak_rss.hpp"

using namespace layercache;
using lcbench::Options; using lcbench::Contention; using lcbench::Clock; using lcbench::JsonLine;
using lcbench::parse_options; using lcbench::loadavg_1m; using lcbench::current_rss_mb; using lcbench::peak_rss_mb;
using lcbench::batches_to_time; using lcbench::process_cpu_seconds; using lcbench::seconds_since; using lcbench::add_timing;
namespace alloc = lcbench::alloc;

namespace {

#define LC_STR2(x) #x
#define LC_STR(x) LC_STR2(x)
const std::string net_name = LC_STR(LC_BENCH_NET);

// Hidden width of the MLP's first layer (the second has half); --width scales the network for
// the width-scaling plot. 512 is the benchmark's MLP 784-512-256-10.
std::size_t mlp_width = 512;

Network make_net() {
  if (net_name == "resnet")  // the MLP's stem, two residual blocks (one with a projection)
    return Network{Dense(784, mlp_width), ReLU(),
                   Residual(Network{Dense(mlp_width, mlp_width), ReLU(), Dense(mlp_width, mlp_width)}),
                   ReLU(),
                   Residual(Network{Dense(mlp_width, mlp_width / 2), ReLU(),
                                    Dense(mlp_width / 2, mlp_width / 2)},
                            Dense(mlp_width, mlp_width / 2)),
                   ReLU(), Dense(mlp_width / 2, 10)};
  if (net_name == "mlp")
    return Network{Dense(784, mlp_width), ReLU(), Dense(mlp_width, mlp_width / 2), ReLU(),
                   Dense(mlp_width / 2, 10)};
  if (net_name == "lstm")  // examples/fashion_rnn's network: LSTM(28 → 128), last step → Dense
    return Network{LSTM({.n_in = 28, .n_hidden = 128}), Dense(128, 10)};
  if (net_name == "cnn_bn")  // the CNN with BatchNorm (the convolutions' bias is its shift)
    return Network{Conv2D({.in_channels = 1, .out_channels = 32, .kernel = 3, .bias = false}),
                   BatchNorm(32), ReLU(), MaxPool2D({.kernel = 2, .stride = 2}),
                   Conv2D({.in_channels = 32, .out_channels = 64, .kernel = 3, .bias = false}),
                   BatchNorm(64), ReLU(), MaxPool2D({.kernel = 2, .stride = 2}),
                   Flatten(), Dense(1600, 128), ReLU(), Dropout({.rate = 0.5}), Dense(128, 10)};
  return Network{Conv2D({.in_channels = 1, .out_channels = 32, .kernel = 3}), ReLU(), MaxPool2D({.kernel = 2, .stride = 2}),
                 Conv2D({.in_channels = 32, .out_channels = 64, .kernel = 3}), ReLU(), MaxPool2D({.kernel = 2, .stride = 2}),
                 Flatten(), Dense(1600, 128), ReLU(), Dense(128, 10)};
}

struct Trainer {
  const Network& net;
  TreeF params;
  TreeF state;
  Optimizer optimizer = momentum({.learning_rate = 0.01, .momentum = 0.9});
  OptStateF opt_state{};
  StepWorkspace<float> workspace{};
  Needs needs{.input = false};
  Context ctx{};

  // One pass over the first n_batches batches of `plan`; returns the mean loss.
  double epoch(const Dataset<float>& data, const BatchPlan& plan, std::size_t n_batches) {
    double loss = 0;
    std::size_t seen = 0;
    for (std::size_t b = 0; b < n_batches; ++b) {
      const std::size_t count = plan[b].size();
      loss += train_step(net, params, state, optimizer, opt_state, SoftmaxCrossEntropy(), data,
                         plan, plan[b], needs, ctx, workspace)
                  .loss *
              double(count);
      seen += count;
    }
    return loss / double(seen);
  }
};

// Makes step t of every image its pixel row t, as the twin's (N, 28, 28) batch-first tensor
// reads it: an image column holds the pixels column by column, so each image is transposed
// (docs/sequences.md; examples/fashion_rnn does the same). Not timed.
void rows_as_steps(Dataset<float>& data) {
  for (std::size_t i = 0; i < data.size(); ++i) {
    arma::fmat image(data.x.colptr(i), 28, 28, false, true);  // a view of sample i
    image = arma::fmat(image.t());
  }
  data.shape = Shape{28, 28};
}

}  // namespace

int main(int argc, char** argv) {
  // --width N is this program's own flag; the rest are the shared benchmark flags.
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (std::string(argv[i]) == "--blas-core") {  // benchmarks/run runs every program on these
      std::printf("%s\n", blas_info().core.c_str());
      return 0;
    }
    if (std::string(argv[i]) == "--width" && i + 1 < argc) {
      mlp_width = std::stoul(argv[++i]);
      continue;
    }

    args.push_back(argv[i]);
  }
  const Options opt = parse_options(int(args.size()), args.data(), ("train_" + net_name).c_str(),
                                    "  --width N      hidden width of the MLP (default 512)\n"
                                    "  --blas-core    print the BLAS kernels layercache runs on, and exit\n");
  const double load_start = loadavg_1m();
  // With --strategy data (the default) and several threads, training splits each batch
  // across the threads (train_step) and inference splits each request (predict); with
  // --strategy blas both run one pass with a threaded BLAS.
  const bool split_training = opt.strategy != "blas" && opt.threads > 1 && opt.mode == "train";
  const bool split_inference =
      opt.strategy == "data" && opt.threads > 1 && opt.mode == "infer" && opt.batch > 1;
  set_blas_threads(split_training || split_inference ? 1 : opt.threads);
  const bool train = opt.mode == "train";
  Dataset<float> data = load_fashion_mnist<float>(opt.data_dir, train ? "train" : "test");
  if (net_name == "lstm") rows_as_steps(data);
  const double rss_after_load = current_rss_mb();

  const Network net = make_net();
  Rng rng(opt.seed);
  Trainer trainer{net, net.init(data.shape, he_normal(), rng), net.init_state(data.shape)};
  trainer.opt_state = trainer.optimizer.init(trainer.params);
  Rng draws(opt.seed + 1);  // Dropout's masks
  trainer.ctx.rng = &draws;
  trainer.workspace.threads = split_training ? std::size_t(opt.threads) : 1;
  trainer.workspace.split = opt.strategy == "layers" ? Split::layers : Split::batch;

  const std::size_t n = data.size();
  const std::size_t n_batches = batches_to_time(n, opt.batch, opt.max_samples);
  std::size_t samples_timed = 0;
  std::vector<double> epoch_s, epoch_cpu_s;
  Contention contention;
  double last_loss = -1, allocs = -1;

  if (train) {
    BatchPlan plan = batches(n, opt.batch, false, &rng);
    for (std::size_t b = 0; b < n_batches; ++b) samples_timed += plan[b].size();
    for (int w = 0; w < opt.warmup; ++w) trainer.epoch(data, plan, n_batches);
    for (int e = 0; e < opt.epochs; ++e) {
      plan.reshuffle(rng);
      contention.start();
      const double cpu0 = process_cpu_seconds();
      const auto t0 = Clock::now();
      last_loss = trainer.epoch(data, plan, n_batches);
      const double s = seconds_since(t0);
      const double cpu = process_cpu_seconds() - cpu0;
      contention.stop();
      const double scale = double(n) / double(samples_timed);
      epoch_s.push_back(s * scale);
      epoch_cpu_s.push_back(cpu * scale);
    }
    // Heap allocations of steady-state steps (full batches, after the warm-up above).
    {
      const std::size_t steps = 5;
      alloc::Scope scope;
      trainer.epoch(data, plan, std::min<std::size_t>(steps, plan.size() - 1));
      allocs = double(scope.counts().allocations()) / double(steps);
    }
  } else {
    arma::fmat y;
    auto pass = [&] {
      const auto t0 = Clock::now();
      samples_timed = 0;
      for (std::size_t b = 0; b < n_batches; ++b) {
        const std::size_t begin = b * opt.batch, end = std::min(n, begin + opt.batch);
        const arma::fmat x(const_cast<float*>(data.x.colptr(begin)), data.x.n_rows, end - begin, false, true);
        if (split_inference)  // the request's columns dealt out to the threads
          y = predict(net, trainer.params, trainer.state, x, data.shape,
                      (x.n_cols + opt.threads - 1) / opt.threads, std::size_t(opt.threads));
        else
          net.infer_into(trainer.params, trainer.state, x, data.shape, y);
        samples_timed += end - begin;
      }
      return seconds_since(t0);
    };
    for (int w = 0; w < opt.warmup; ++w) pass();
    for (int e = 0; e < opt.epochs; ++e) {
      contention.start();
      const double cpu0 = process_cpu_seconds();
      const double s = pass();
      const double cpu = process_cpu_seconds() - cpu0;
      contention.stop();
      const double scale = double(n) / double(samples_timed);
      epoch_s.push_back(s * scale);
      epoch_cpu_s.push_back(cpu * scale);
    }
  }

  JsonLine j;
  j.str("impl", "layercache")
      .str("case", net_name + (train ? "_b" : "_infer_b") + std::to_string(opt.batch))
      .str("mode", opt.mode)
      .integer("threads", opt.threads)
      .str("strategy", split_training || split_inference ? opt.strategy : "blas")
      .integer("openblas_threads", blas_threads())
      .str("blas_core", blas_info().core)
      .integer("batch", static_cast<long long>(opt.batch))
      .integer("width", net_name == "mlp" || net_name == "resnet" ? static_cast<long long>(mlp_width)
                                                                  : 0)
      .integer("warmup", opt.warmup)
      .str("set", train ? "train" : "test");
  add_timing(j, n, samples_timed, epoch_s, epoch_cpu_s, contention, load_start);
  if (train) j.num("last_epoch_loss", last_loss).num("allocs_per_step", allocs);
  j.num("rss_after_load_mb", rss_after_load).num("peak_rss_mb", peak_rss_mb()).print();
  return 0;
}
