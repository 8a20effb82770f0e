// Specification of training: train_step, fit, callbacks, progress output, freezing,
// reproducibility and thread safety.
#define BOOST_TEST_MODULE training
#include <boost/test/unit_test.hpp>

#include <functional>
#include <limits>
#include <sstream>
#include <thread>
#include <tuple>

#include "alloc_counter.hpp"
#include "counting_executor.hpp"
#include "layercache/layercache.hpp"
#include "support/labelled_points.hpp"

using namespace layercache;

namespace {

// Two Gaussian blobs in 2-D, labels 0 and 1: linearly separable, so training converges fast.
Dataset<float> blobs(std::size_t n, std::uint64_t seed) {
  return testing_data::labelled_points(n, 2, seed, [](std::size_t i, Rng& rng) {
    const unsigned label = i % 2;
    // Braces: the two draws are made in this order.
    return std::tuple{rng.normal(label ? 1.5 : -1.5, 0.7), rng.normal(label ? 1.0 : -1.0, 0.7),
                      label};
  });
}

Network small_net() { return Network{Dense(2, 8), ReLU(), Dense(8, 2)}; }

// small_net trained from a fixed initialization on 400 blob samples with Adam(0.01).
History fit_blobs(const FitOptions<float>& options) {
  const Network net = small_net();
  const Dataset<float> data = blobs(400, 1);
  Rng rng(2);
  TreeF params = net.init(data.shape, he_normal(), rng);
  TreeF state = net.init_state(data.shape);
  return fit(net, params, state, adam({.learning_rate = 0.01}), SoftmaxCrossEntropy(), data,
             options);
}

// What a test needs to call train_step: a network's fresh params from `rng`, SGD with
// momentum 0.9 and its state, and a workspace with the given threads and split.
struct Trainee {
  TreeF params;
  TreeF state;
  Optimizer opt;
  OptStateF opt_state;
  StepWorkspace<float> ws;

  Trainee(const Network& net, const Shape& shape, Rng& rng, double learning_rate,
          std::size_t threads, Split split)
      : params(net.init(shape, he_normal(), rng)),
        opt(momentum({.learning_rate = learning_rate, .momentum = 0.9})),
        opt_state(opt.init(params)) {
    ws.threads = threads;
    ws.split = split;
  }
};

}  // namespace

BOOST_AUTO_TEST_CASE(fit_learns_separable_blobs) {
  std::ostringstream log;
  const History h = fit_blobs(
      {.epochs = 10, .batch_size = 32, .progress = Progress::silent, .log = &log});
  BOOST_TEST(h.epochs.size() == 10u);
  BOOST_TEST(h.epochs.back().loss < h.epochs.front().loss);
  BOOST_TEST(h.epochs.back().accuracy > 0.95);
  BOOST_TEST(log.str().empty());
}

BOOST_AUTO_TEST_CASE(plain_progress_prints_one_line_per_epoch) {
  const Network net = small_net();
  const Dataset<float> data = blobs(100, 1);
  const Dataset<float> validation = blobs(50, 9);
  Rng rng(2);
  TreeF params = net.init(data.shape, he_normal(), rng);
  TreeF state;
  std::ostringstream log;
  fit(net, params, state, sgd({.learning_rate = 0.1}), SoftmaxCrossEntropy(), data,
      FitOptions<float>{.epochs = 3, .batch_size = 16, .validation = &validation,
                        .progress = Progress::lines, .log = &log});
  std::istringstream lines(log.str());
  std::string line;
  int n = 0;
  while (std::getline(lines, line)) {
    ++n;
    BOOST_TEST_CONTEXT(line) {
      BOOST_TEST(line.rfind("epoch " + std::to_string(n) + "/3  loss ", 0) == 0u);
      BOOST_TEST(line.find("  accuracy ") != std::string::npos);
      BOOST_TEST(line.find("  val_loss ") != std::string::npos);
      BOOST_TEST(line.find("  val_accuracy ") != std::string::npos);
      BOOST_TEST(line.find('\r') == std::string::npos);
    }
  }
  BOOST_TEST(n == 3);
}

BOOST_AUTO_TEST_CASE(early_stopping_stops_after_patience_epochs_without_improvement) {
  auto callback = early_stopping<float>({.monitor = "val_loss", .patience = 3, .restore_best = false});
  TreeF params, state;
  OptStateF opt_state;
  History history;
  const Network net = small_net();
  const double val_losses[] = {1.0, 0.8, 0.85, 0.9, 0.79, 0.81, 0.82, 0.83, 0.7};
  std::size_t stopped_at = 0;
  for (std::size_t i = 0; i < std::size(val_losses); ++i) {
    EpochLog log;
    log.epoch = i + 1;
    log.val_loss = val_losses[i];
    FitContext<float> ctx{net, params, state, opt_state, history, false, {}};
    callback(log, ctx);
    if (ctx.stop) {
      stopped_at = log.epoch;
      break;
    }
  }
  // Best 0.79 at epoch 5; epochs 6, 7, 8 do not improve: stop after epoch 8.
  BOOST_TEST(stopped_at == 8u);
}

BOOST_AUTO_TEST_CASE(early_stopping_in_fit_restores_the_best_params) {
  const Network net = small_net();
  const Dataset<float> data = blobs(200, 1);
  const Dataset<float> validation = blobs(100, 5);
  Rng rng(2);
  TreeF params = net.init(data.shape, he_normal(), rng);
  TreeF state;
  TreeF best;
  double best_loss = 1e300;
  // Records the params of the best epoch so far, as early stopping should restore them.
  Callback<float> recorder = [&](const EpochLog& log, FitContext<float>& ctx) {
    if (log.val_loss < best_loss) {
      best_loss = log.val_loss;
      best = ctx.params;
    }
  };
  // A learning rate far too large makes the validation loss stop improving quickly.
  const History h = fit(net, params, state, sgd({.learning_rate = 5.0}), SoftmaxCrossEntropy(), data,
                        FitOptions<float>{.epochs = 40, .batch_size = 20, .validation = &validation,
                                          .progress = Progress::silent,
                                          .callbacks = {recorder, early_stopping<float>({.patience = 2})}});
  BOOST_TEST(h.stopped_early);
  BOOST_TEST(h.stop_reason.find("params restored") != std::string::npos);
  BOOST_TEST(params.identical(best));
}

BOOST_AUTO_TEST_CASE(early_stopping_rejects_unknown_metrics_listing_the_ones_it_takes) {
  for (const std::string monitor : {"val_los", "seconds"}) {
    BOOST_CHECK_EXCEPTION(early_stopping<float>({.monitor = monitor}), ConfigError,
                          [&](const ConfigError& e) {
                            const std::string what = e.what();
                            return what.find("'" + monitor + "'") != std::string::npos &&
                                   what.find("loss, accuracy, val_loss or val_accuracy") !=
                                       std::string::npos;
                          });
  }
}

BOOST_AUTO_TEST_CASE(early_stopping_on_a_validation_metric_without_validation_data_fails_before_training) {
  const Network net = small_net();
  const Dataset<float> data = blobs(64, 1);
  for (const std::string monitor : {"val_loss", "val_accuracy"}) {
    BOOST_TEST_CONTEXT(monitor) {
      Rng rng(2);
      TreeF params = net.init(data.shape, he_normal(), rng);
      TreeF state;
      const Optimizer opt = adam({});
      OptStateF opt_state = opt.init(params);
      const TreeF params_before = params;
      const TreeF opt_before = opt_state.tree();
      std::size_t epochs_seen = 0;
      std::ostringstream log;
      FitOptions<float> options{.epochs = 3, .progress = Progress::lines, .log = &log};
      options.callbacks.push_back([&](const EpochLog&, FitContext<float>&) { ++epochs_seen; });
      options.callbacks.push_back(early_stopping<float>({.monitor = monitor}));
      BOOST_CHECK_EXCEPTION(
          fit(net, params, state, opt, opt_state, SoftmaxCrossEntropy(), data, options),
          ConfigError, [&](const ConfigError& e) {
            return std::string(e.what()) ==
                   "early stopping monitors '" + monitor +
                       "', which needs validation data: FitOptions::validation is null";
          });
      BOOST_TEST(epochs_seen == 0u);
      BOOST_TEST(log.str().empty());
      BOOST_TEST(params.identical(params_before));
      BOOST_TEST(opt_state.tree().identical(opt_before));
    }
  }
}

BOOST_AUTO_TEST_CASE(a_callback_may_check_the_run_once_before_training_starts) {
  const Dataset<float> validation = blobs(20, 5);
  std::vector<std::string> calls;
  const Callback<float> watcher(
      [&](const EpochLog& log, FitContext<float>&) {
        calls.push_back("epoch " + std::to_string(log.epoch));
      },
      [&](const FitStart<float>& start) {
        BOOST_TEST(start.network.kind() == "network");
        BOOST_TEST(start.params.n_tensors() == 4u);
        BOOST_TEST(start.train.size() == 400u);
        BOOST_TEST(start.options.validation == &validation);
        BOOST_TEST(start.options.epochs == 2u);
        BOOST_TEST(start.batches == 13u);  // 400 samples in batches of 32
        calls.push_back("before training");
      });
  FitOptions<float> options{.epochs = 2, .batch_size = 32, .validation = &validation,
                            .progress = Progress::silent, .callbacks = {watcher}};
  fit_blobs(options);
  BOOST_TEST(calls == (std::vector<std::string>{"before training", "epoch 1", "epoch 2"}),
             boost::test_tools::per_element());

  // A check that throws stops fit before its first step: no epoch runs.
  calls.clear();
  options.callbacks = {
      Callback<float>([&](const EpochLog&, FitContext<float>&) { calls.push_back("epoch"); },
                      [](const FitStart<float>&) { throw ConfigError("not in this run"); })};
  BOOST_CHECK_EXCEPTION(fit_blobs(options), ConfigError, [](const ConfigError& e) {
    return std::string(e.what()) == "not in this run";
  });
  BOOST_TEST(calls.empty());
}

BOOST_AUTO_TEST_CASE(a_callback_without_a_function_is_a_config_error) {
  BOOST_CHECK_THROW(Callback<float>(std::function<void(const EpochLog&, FitContext<float>&)>()),
                    ConfigError);
}

BOOST_AUTO_TEST_CASE(labels_out_of_range_throw_data_error_naming_the_sample_and_change_nothing) {
  const Network net = small_net();
  Dataset<float> data = blobs(50, 1);
  data.labels[17] = 4;
  Rng rng(2);
  TreeF params = net.init(data.shape, he_normal(), rng);
  const TreeF before = params;
  TreeF state;
  BOOST_CHECK_EXCEPTION(
      fit(net, params, state, sgd({}), SoftmaxCrossEntropy(), data,
          FitOptions<float>{.epochs = 1, .progress = Progress::silent}),
      DataError, [](const DataError& e) {
        return std::string(e.what()).find("sample 17 has label 4") != std::string::npos;
      });
  BOOST_TEST(params.identical(before));
}

BOOST_AUTO_TEST_CASE(a_bad_batch_leaves_params_and_optimizer_state_unchanged) {
  // With two threads the 64 columns run as two shards; errors still name whole-batch indices.
  for (const std::size_t threads : {1u, 2u}) {
    const Network net = small_net();
    Rng rng(2);
    TreeF params = net.init(Shape{2}, he_normal(), rng);
    TreeF state;
    const Optimizer opt = adam({});
    OptStateF opt_state = opt.init(params);
    const TreeF params_before = params;
    const TreeF opt_before = opt_state.tree();
    StepWorkspace<float> ws;
    ws.threads = threads;
    const arma::fmat x(2, 64, arma::fill::randn);
    const arma::uvec wrong_count(63, arma::fill::zeros);
    BOOST_CHECK_THROW(train_step(net, params, state, opt, opt_state, SoftmaxCrossEntropy(), x,
                                 Shape{2}, wrong_count, Needs{}, Context{}, ws),
                      ShapeError);
    arma::uvec out_of_range(64, arma::fill::zeros);
    out_of_range[50] = 7;  // in the second shard (columns 32..63)
    BOOST_CHECK_EXCEPTION(
        train_step(net, params, state, opt, opt_state, SoftmaxCrossEntropy(), x, Shape{2},
                   out_of_range, Needs{}, Context{}, ws),
        DataError, [](const DataError& e) {
          return std::string(e.what()).find("label 7 of sample 50 ") != std::string::npos;
        });
    BOOST_TEST(params.identical(params_before), threads << " threads");
    BOOST_TEST(opt_state.tree().identical(opt_before), threads << " threads");
  }
}

BOOST_AUTO_TEST_CASE(freezing_keeps_params_bit_identical_and_skips_their_gradients) {
  const Network net = small_net();
  const Dataset<float> data = blobs(64, 1);
  Rng rng(2);
  TreeF params = net.init(data.shape, he_normal(), rng);
  TreeF state;
  const TreeF before = params;
  const Optimizer opt = momentum({.learning_rate = 0.05, .momentum = 0.9});
  OptStateF opt_state = opt.init(params);
  const FrozenSet frozen = freeze(params, {"dense1/*"});
  Needs needs;
  needs.input = false;
  needs.frozen = &frozen;
  StepWorkspace<float> ws;
  for (int step = 0; step < 10; ++step) {
    train_step(net, params, state, opt, opt_state, SoftmaxCrossEntropy(), data.x, data.shape,
               data.labels, needs, Context{}, ws);
    // Never computed: the frozen gradients are empty, not zero-filled.
    BOOST_TEST(ws.backward.grads.at("dense1/weight").value().is_empty());
    BOOST_TEST(ws.backward.grads.at("dense1/bias").value().is_empty());
    BOOST_TEST(!ws.backward.grads.at("dense2/weight").value().is_empty());
  }
  BOOST_TEST(params.at("dense1").identical(before.at("dense1")));
  BOOST_TEST(!params.at("dense2").identical(before.at("dense2")));
}

BOOST_AUTO_TEST_CASE(fit_freezes_by_pattern) {
  const Network net = small_net();
  const Dataset<float> data = blobs(64, 1);
  Rng rng(2);
  TreeF params = net.init(data.shape, he_normal(), rng);
  TreeF state;
  const TreeF before = params;
  fit(net, params, state, adamw({}), SoftmaxCrossEntropy(), data,
      FitOptions<float>{.epochs = 2, .batch_size = 8, .progress = Progress::silent, .freeze = {"dense2/*"}});
  BOOST_TEST(params.at("dense2").identical(before.at("dense2")));
  BOOST_TEST(!params.at("dense1").identical(before.at("dense1")));
}

namespace {

TreeF train_100_steps(std::uint64_t seed) {
  const Network net{Dense(2, 16), Tanh(), Dense(16, 16), ReLU(), Dense(16, 2)};
  const Dataset<float> data = blobs(256, seed);
  Rng rng(seed);
  TreeF params = net.init(data.shape, xavier_uniform(), rng);
  TreeF state;
  fit(net, params, state, adam({.learning_rate = 1e-3}), SoftmaxCrossEntropy(), data,
      FitOptions<float>{.epochs = 16, .batch_size = 40, .seed = seed, .drop_last = true,
                        .progress = Progress::silent});  // 6 batches × 16 epochs ≈ 100 steps
  return params;
}

}  // namespace

BOOST_AUTO_TEST_CASE(same_seed_gives_bit_identical_params_after_100_steps) {
  const int saved = blas_threads();
  set_blas_threads(1);
  const TreeF a = train_100_steps(11);
  const TreeF b = train_100_steps(11);
  const TreeF c = train_100_steps(12);
  set_blas_threads(saved);
  BOOST_TEST(a.identical(b));
  BOOST_TEST(!a.identical(c));
}

BOOST_AUTO_TEST_CASE(two_threads_sharing_one_network_match_a_sequential_run) {
  const int saved = blas_threads();
  set_blas_threads(1);
  const Network net{Dense(2, 32), ReLU(), Dense(32, 32), Tanh(), Dense(32, 2)};  // shared, const
  const Dataset<float> data_a = blobs(256, 21), data_b = blobs(256, 22);
  auto train = [&](const Dataset<float>& data, std::uint64_t seed) {
    Rng rng(seed);
    TreeF params = net.init(data.shape, he_normal(), rng);
    TreeF state;
    const Optimizer opt = adam({.learning_rate = 1e-2});
    OptStateF opt_state = opt.init(params);
    StepWorkspace<float> ws;
    for (int step = 0; step < 200; ++step)
      train_step(net, params, state, opt, opt_state, SoftmaxCrossEntropy(), data.x, data.shape,
                 data.labels, Needs{}, Context{}, ws);
    return params;
  };
  const TreeF seq_a = train(data_a, 1), seq_b = train(data_b, 2);
  TreeF par_a, par_b;
  std::thread ta([&] { par_a = train(data_a, 1); });
  std::thread tb([&] { par_b = train(data_b, 2); });
  ta.join();
  tb.join();
  set_blas_threads(saved);
  BOOST_TEST(par_a.identical(seq_a));
  BOOST_TEST(par_b.identical(seq_b));
}

BOOST_AUTO_TEST_CASE(a_gradient_with_nan_or_inf_throws_numeric_error_on_any_shard_and_changes_nothing) {
  // An Inf target (the loss's own finiteness check is off by default) makes that column's
  // loss gradient infinite, and the gradients of every layer Inf or NaN. With 2 and 3
  // threads the 96 columns run as shards of 48 or 32, and each shard's turn comes.
  const Network net{Dense(2, 6), Tanh(), Dense(6, 3)};
  for (const Split split : {Split::batch, Split::layers}) {
    for (const std::size_t threads : {1u, 2u, 3u}) {
      for (const std::size_t column : {0u, 40u, 50u, 95u}) {
        Rng rng(4);
        Trainee t(net, Shape{2}, rng, 0.1, threads, split);
        const arma::fmat x(2, 96, arma::fill::randn);
        arma::fmat target(3, 96, arma::fill::randn);
        // One good step first, so that params and momentum are not at their initial values.
        train_step(net, t.params, t.state, t.opt, t.opt_state, MeanSquaredError(), x, Shape{2},
                   target, Needs{}, Context{}, t.ws);
        const TreeF params_before = t.params;
        const TreeF opt_before = t.opt_state.tree();
        target(1, column) = std::numeric_limits<float>::infinity();
        BOOST_CHECK_EXCEPTION(
            train_step(net, t.params, t.state, t.opt, t.opt_state, MeanSquaredError(), x,
                       Shape{2}, target, Needs{}, Context{}, t.ws),
            NumericError, [](const NumericError& e) {
              const std::string what = e.what();
              return what.find("gradient holds") != std::string::npos &&
                     what.find("params were not changed") != std::string::npos;
            });
        BOOST_TEST(t.params.identical(params_before), threads << " threads, column " << column);
        BOOST_TEST(t.opt_state.tree().identical(opt_before),
                   threads << " threads, column " << column);
      }
    }
  }
}

// ----- data parallelism (StepWorkspace::threads) -------------------------------------------

namespace {

// `steps` steps of SGD with momentum on the first batch of `batch` samples of `data`, from
// a fixed initialization, with the given threads and split.
TreeF train_steps(const Network& net, const Dataset<float>& data, Rng& rng, std::size_t threads,
                  Split split, int steps, StepResult* last, std::size_t batch) {
  Trainee t(net, data.shape, rng, 0.05, threads, split);
  Needs needs;
  needs.input = false;
  const BatchPlan plan = batches(data.size(), batch, false);
  for (int step = 0; step < steps; ++step) {
    const StepResult r = train_step(net, t.params, t.state, t.opt, t.opt_state,
                                    SoftmaxCrossEntropy(), data, plan, plan[0], needs, Context{},
                                    t.ws);
    if (last) *last = r;
  }
  return t.params;
}

// Trains a small MLP for `steps` steps of one 96-sample batch with the given thread count
// (splitting the batch).
TreeF train_with_threads(std::size_t threads, int steps, StepResult* last = nullptr) {
  const Network net{Dense(2, 24), ReLU(), Dense(24, 24), Tanh(), Dense(24, 2)};
  Rng rng(3);
  return train_steps(net, blobs(96, 31), rng, threads, Split::batch, steps, last, 96);
}

// 96 samples of 64 normal features, each labelled with one of 4 classes at random.
Dataset<float> random_classes(Rng& rng) {
  Dataset<float> data;
  data.shape = Shape{64};
  data.x.set_size(64, 96);
  for (float& v : data.x) v = float(rng.normal());
  data.labels.set_size(96);
  for (std::size_t i = 0; i < 96; ++i) data.labels[i] = rng.below(4);
  return data;
}

// 20 steps on one batch of `batch` (at most 96) samples, through a network whose products
// and activations are large enough to split across threads (the first product is
// 64 × 256 × 96 multiply-adds at 96), with the given threads and split.
TreeF train_split(std::size_t threads, Split split, StepResult* last = nullptr,
                  std::size_t batch = 96) {
  const Network net{Dense(64, 256), ReLU(), Dense(256, 256), Tanh(), Dense(256, 4)};
  Rng rng(12);
  const Dataset<float> data = random_classes(rng);
  return train_steps(net, data, rng, threads, split, 20, last, batch);
}

double max_relative_difference(const TreeF& a, const TreeF& b) {
  double worst = 0;
  for (const std::string& path : a.paths()) {
    const arma::fmat& x = a.at(path).value();
    const arma::fmat& y = b.at(path).value();
    worst = std::max(worst, double(arma::abs(x - y).max()) / (1e-3 + double(arma::abs(y).max())));
  }
  return worst;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_step_split_across_threads_matches_the_one_pass_step) {
  // The same mean gradient, from shards summed in another order (Split::batch) or from
  // products split by rows (Split::layers): equal up to float rounding.
  const int saved = blas_threads();
  set_blas_threads(1);
  using Trainer = std::function<TreeF(std::size_t threads, StepResult* last)>;
  const Trainer by_batch = [](std::size_t t, StepResult* r) { return train_with_threads(t, 20, r); };
  const Trainer by_layers = [](std::size_t t, StepResult* r) {
    return train_split(t, Split::layers, r);
  };
  for (const Trainer& train : {by_batch, by_layers}) {
    StepResult one, split;
    const TreeF serial = train(1, &one);
    for (std::size_t threads : {2u, 3u}) {
      const TreeF parallel = train(threads, &split);
      BOOST_TEST(max_relative_difference(parallel, serial) < 1e-4, threads << " threads");
      BOOST_TEST(split.loss == one.loss, boost::test_tools::tolerance(1e-5));
      BOOST_TEST(split.correct == one.correct);
    }
  }
  BOOST_TEST(!train_with_threads(2, 20).identical(train_with_threads(1, 20)));  // shards ran
  set_blas_threads(saved);
}

BOOST_AUTO_TEST_CASE(shards_do_not_use_an_executor_from_the_callers_context) {
  // The shards run on the step's own threads; handing them the caller's executor as well
  // would put threads on threads.
  const Network net{Dense(64, 256), ReLU(), Dense(256, 4)};
  Rng rng(8);
  const Dataset<float> data = random_classes(rng);
  Trainee t(net, data.shape, rng, 0.05, 2, Split::batch);
  CountingExecutor executor(2);
  Context ctx;
  ctx.executor = &executor;
  Needs needs;
  needs.executor = &executor;
  const BatchPlan plan = batches(96, 96, false);
  train_step(net, t.params, t.state, t.opt, t.opt_state, SoftmaxCrossEntropy(), data, plan,
             plan[0], needs, ctx, t.ws);
  BOOST_TEST(executor.runs == 0);
}

BOOST_AUTO_TEST_CASE(a_step_split_across_threads_is_bit_reproducible) {
  BOOST_TEST(train_with_threads(2, 30).identical(train_with_threads(2, 30)));
  BOOST_TEST(train_split(2, Split::layers).identical(train_split(2, Split::layers)));
}

BOOST_AUTO_TEST_CASE(small_batches_run_in_one_pass) {
  const Network net = small_net();
  Rng rng(2);
  TreeF params = net.init(Shape{2}, he_normal(), rng);
  TreeF state;
  const Optimizer opt = sgd();
  OptStateF opt_state = opt.init(params);
  StepWorkspace<float> ws;
  ws.threads = 2;  // min_shard_columns = 16: 31 columns give one shard, 32 give two
  for (const std::size_t batch : {31u, 32u}) {
    const Dataset<float> data = blobs(batch, 4);
    train_step(net, params, state, opt, opt_state, SoftmaxCrossEntropy(), data.x, data.shape,
               data.labels, Needs{}, Context{}, ws);
    BOOST_TEST(ws.dy.n_cols == (batch == 31 ? 31u : 16u));  // dy is the first shard's
  }
}

namespace {

// Blob features with 2-D regression targets (x scaled by the label's sign) instead of labels.
Dataset<float> blob_targets(std::size_t n, std::uint64_t seed) {
  Dataset<float> data = blobs(n, seed);
  data.targets = data.x * 0.5f;
  for (std::size_t i = 0; i < n; ++i)
    if (data.labels[i]) data.targets.col(i) *= -1.0f;
  data.labels.reset();
  return data;
}

}  // namespace

BOOST_AUTO_TEST_CASE(early_stopping_on_accuracy_without_labels_fails_before_training) {
  const Network net = small_net();
  const Dataset<float> data = blob_targets(64, 1);
  Rng rng(2);
  TreeF params = net.init(data.shape, he_normal(), rng);
  const TreeF before = params;
  TreeF state;
  std::ostringstream log;
  BOOST_CHECK_EXCEPTION(
      fit(net, params, state, sgd({.learning_rate = 0.1}), MeanSquaredError(), data,
          FitOptions<float>{.progress = Progress::lines, .log = &log,
                            .callbacks = {early_stopping<float>({.monitor = "accuracy"})}}),
      ConfigError, [](const ConfigError& e) {
        return std::string(e.what()) ==
               "early stopping monitors 'accuracy', which needs labels: the training data has "
               "targets";
      });
  // val_accuracy needs labels in the validation data, whatever the training data has: here
  // it has one-hot probability targets instead.
  Dataset<float> unlabelled = blobs(20, 5);
  unlabelled.targets.zeros(2, unlabelled.size());
  for (std::size_t i = 0; i < unlabelled.size(); ++i)
    unlabelled.targets(unlabelled.labels[i], i) = 1;
  unlabelled.labels.reset();
  const Dataset<float> train = blobs(64, 1);
  BOOST_CHECK_EXCEPTION(
      fit(net, params, state, sgd({.learning_rate = 0.1}), SoftmaxCrossEntropy(), train,
          FitOptions<float>{.validation = &unlabelled, .progress = Progress::lines, .log = &log,
                            .callbacks = {early_stopping<float>({.monitor = "val_accuracy"})}}),
      ConfigError, [](const ConfigError& e) {
        return std::string(e.what()) ==
               "early stopping monitors 'val_accuracy', which needs labels: the validation "
               "data has targets";
      });
  BOOST_TEST(log.str().empty());
  BOOST_TEST(params.identical(before));
}

BOOST_AUTO_TEST_CASE(a_step_on_a_batch_of_a_data_set_equals_copy_batch_then_train_step) {
  // The shards gather their own columns: params, loss, accuracy and the gathered batch must
  // be exactly those of gathering the batch first, over the batches of a shuffled plan.
  const Network net{Dense(2, 16), ReLU(), Dense(16, 2)};
  const SoftmaxCrossEntropy cross_entropy;
  const MeanSquaredError squared_error;
  for (const bool labels : {true, false})
    for (const std::size_t threads : {1u, 2u, 3u}) {
      const Dataset<float> data = labels ? blobs(230, 8) : blob_targets(230, 8);
      const Loss& loss = labels ? static_cast<const Loss&>(cross_entropy) : squared_error;
      Rng shuffle(5);
      const BatchPlan plan = batches(data.size(), 96, false, &shuffle);  // 96, 96 and 38
      Rng rng(6);
      const TreeF init = net.init(data.shape, he_normal(), rng);
      TreeF gathered = init, copied = init, state;
      const Optimizer opt = momentum({.learning_rate = 0.05, .momentum = 0.9});
      OptStateF gathered_opt = opt.init(init), copied_opt = opt.init(init);
      StepWorkspace<float> ws_gathered, ws_copied;
      ws_gathered.threads = ws_copied.threads = threads;
      Batch<float> batch;
      for (std::size_t b = 0; b < plan.size(); ++b) {
        const StepResult g = train_step(net, gathered, state, opt, gathered_opt, loss, data, plan,
                                        plan[b], Needs{}, Context{}, ws_gathered);
        copy_batch(data, plan, plan[b], batch);
        const Targets<float> targets =
            labels ? Targets<float>(batch.labels) : Targets<float>(batch.targets);
        const StepResult c = train_step(net, copied, state, opt, copied_opt, loss, batch.x,
                                        data.shape, targets, Needs{}, Context{}, ws_copied);
        const std::string where = std::to_string(threads) + " threads, batch " + std::to_string(b);
        BOOST_TEST(g.loss == c.loss, where);
        BOOST_TEST(g.correct == c.correct, where);
        BOOST_TEST(arma::approx_equal(ws_gathered.batch.x, batch.x, "absdiff", 0.0f), where);
        BOOST_TEST(arma::all(ws_gathered.batch.labels == batch.labels), where);
        BOOST_TEST(ws_gathered.batch.targets.n_cols == batch.targets.n_cols, where);
        BOOST_TEST(gathered.identical(copied), where);
      }
      BOOST_TEST(!gathered.identical(init));
    }
}

BOOST_AUTO_TEST_CASE(a_step_on_a_bad_batch_of_a_data_set_throws_and_changes_nothing) {
  const Network net = small_net();
  const Dataset<float> data = blobs(64, 9);
  for (const std::size_t threads : {1u, 2u}) {
    Rng rng(2);
    TreeF params = net.init(data.shape, he_normal(), rng);
    TreeF state;
    const Optimizer opt = adam({});
    OptStateF opt_state = opt.init(params);
    const TreeF params_before = params, opt_before = opt_state.tree();
    StepWorkspace<float> ws;
    ws.threads = threads;
    BatchPlan plan = batches(data.size(), 64, false);
    plan.order[40] = 64;  // one past the last sample, in the second shard
    BOOST_CHECK_EXCEPTION(train_step(net, params, state, opt, opt_state, SoftmaxCrossEntropy(),
                                     data, plan, plan[0], Needs{}, Context{}, ws),
                          DataError, [](const DataError& e) {
                            return std::string(e.what()).find("position 40 holds sample index 64") !=
                                   std::string::npos;
                          });
    plan.order[40] = 40;
    BOOST_CHECK_THROW(train_step(net, params, state, opt, opt_state, SoftmaxCrossEntropy(), data,
                                 plan, BatchRange{0, 65}, Needs{}, Context{}, ws),
                      ConfigError);
    BOOST_TEST(params.identical(params_before), threads << " threads");
    BOOST_TEST(opt_state.tree().identical(opt_before), threads << " threads");
  }
}

BOOST_AUTO_TEST_CASE(the_automatic_split_divides_the_batch_when_it_makes_two_shards) {
  // 96 columns make two shards of 48: the batch is split (the shards' gradient sum rounds
  // differently from the one pass of the layer split).
  BOOST_TEST(train_split(2, Split::automatic).identical(train_split(2, Split::batch)));
  BOOST_TEST(!train_split(2, Split::automatic).identical(train_split(2, Split::layers)));
  // 24 columns are too few for two shards of 16: the automatic split shares each layer's
  // work instead (Split::batch would run on one thread; the speed-up is the benchmarks'
  // to show), which gives the one-thread result.
  const TreeF one = train_split(1, Split::batch, nullptr, 24);
  BOOST_TEST(max_relative_difference(train_split(2, Split::automatic, nullptr, 24), one) < 1e-5);
  BOOST_TEST(train_split(2, Split::automatic, nullptr, 24)
                 .identical(train_split(2, Split::layers, nullptr, 24)));
}

BOOST_AUTO_TEST_CASE(fit_on_two_threads_learns_separable_blobs) {
  const History h =
      fit_blobs({.epochs = 10, .batch_size = 64, .progress = Progress::silent, .threads = 2});
  BOOST_TEST(h.epochs.back().accuracy > 0.95);
  const History layers = fit_blobs(
      {.epochs = 10, .batch_size = 64, .progress = Progress::silent, .threads = 2, .split = Split::layers});
  BOOST_TEST(layers.epochs.back().accuracy > 0.95);
  BOOST_CHECK_THROW(fit_blobs({.progress = Progress::silent, .threads = 0}), ConfigError);
}

BOOST_AUTO_TEST_CASE(bad_settings_throw_config_error_before_the_first_step_changes_anything) {
  const Network net = small_net();
  const Dataset<float> data = blobs(64, 1);
  Rng rng(2);
  Trainee t(net, data.shape, rng, 0.1, 1, Split::automatic);
  const TreeF before = t.params;
  // The validation pass's batch size was only checked after the first epoch had trained.
  BOOST_CHECK_THROW(fit(net, t.params, t.state, t.opt, t.opt_state, SoftmaxCrossEntropy(), data,
                        {.epochs = 1, .validation = &data, .progress = Progress::silent,
                         .eval_batch_size = 0}),
                    ConfigError);
  t.ws.threads = 0;
  BOOST_CHECK_THROW(train_step(net, t.params, t.state, t.opt, t.opt_state, SoftmaxCrossEntropy(),
                               data.x, data.shape, data.labels, Needs{}, Context{}, t.ws),
                    ConfigError);
  BOOST_TEST(t.params.identical(before));
}

BOOST_AUTO_TEST_CASE(fit_rejects_params_with_an_entry_the_network_does_not_declare) {
  const Network net = small_net();
  const Dataset<float> data = blobs(64, 1);
  Rng rng(2);
  Trainee t(net, data.shape, rng, 0.1, 1, Split::automatic);
  t.params.at("dense1").add("extra", TreeF(arma::fmat(2, 2, arma::fill::ones)));
  t.opt_state = t.opt.init(t.params);
  const TreeF before = t.params;
  BOOST_CHECK_EXCEPTION(
      fit(net, t.params, t.state, t.opt, t.opt_state, SoftmaxCrossEntropy(), data,
          {.epochs = 1, .progress = Progress::silent}),
      ConfigError, [](const ConfigError& e) {
        return std::string(e.what()) == "dense1: unexpected entry 'extra' in the params given to fit";
      });
  BOOST_TEST(t.params.identical(before));
}

BOOST_AUTO_TEST_CASE(train_step_rejects_params_with_an_entry_no_layer_declares_and_changes_nothing) {
  // A dense layer's extra tensor, and a layer name the nested network does not have; each
  // on one thread, split by batch and split by layers.
  const Network net{named("encoder", Network{Dense(2, 8), ReLU()}), Dense(8, 2)};
  const Dataset<float> data = blobs(64, 1);
  struct Case {
    const char* parent;
    const char* entry;
    TreeF value;
    const char* message;
  };
  const Case cases[] = {
      {"encoder/dense1", "extra", TreeF(arma::fmat(2, 2, arma::fill::ones)),
       "encoder/dense1: unexpected entry 'extra' in the params (the dense layer's params are "
       "weight, bias)"},
      {"encoder", "dense9", TreeF(arma::fmat(8, 2, arma::fill::ones)),
       "encoder: unexpected entry 'dense9' in the params (the network's layers are dense1, "
       "relu1)"},
  };
  for (const Case& c : cases)
    for (const auto& [threads, split] : {std::pair{std::size_t(1), Split::automatic},
                                         std::pair{std::size_t(2), Split::batch},
                                         std::pair{std::size_t(2), Split::layers}}) {
      BOOST_TEST_CONTEXT(c.parent << "/" << c.entry << ", " << threads << " threads") {
        Rng rng(2);
        Trainee t(net, data.shape, rng, 0.1, threads, split);
        t.params.at(c.parent).add(c.entry, c.value);
        t.opt_state = t.opt.init(t.params);  // the optimizer takes any params
        const TreeF params_before = t.params;
        const TreeF opt_before = t.opt_state.tree();
        const auto expected = [&](const ConfigError& e) {
          return std::string(e.what()) == c.message;
        };
        BOOST_CHECK_EXCEPTION(train_step(net, t.params, t.state, t.opt, t.opt_state,
                                         SoftmaxCrossEntropy(), data.x, data.shape, data.labels,
                                         Needs{}, Context{}, t.ws),
                              ConfigError, expected);
        BOOST_TEST(t.params.identical(params_before));
        BOOST_TEST(t.opt_state.tree().identical(opt_before));
        BOOST_CHECK_EXCEPTION(predict(net, t.params, t.state, data.x, data.shape, 16, threads),
                              ConfigError, expected);
        BOOST_CHECK_EXCEPTION(evaluate(net, t.params, t.state, SoftmaxCrossEntropy(), data, 16,
                                       threads),
                              ConfigError, expected);
      }
    }
}

BOOST_AUTO_TEST_CASE(evaluate_and_predict_in_batches_equal_one_full_pass) {
  const Network net = small_net();
  const Dataset<float> data = blobs(103, 3);
  Rng rng(2);
  const TreeF params = net.init(data.shape, he_normal(), rng);
  const TreeF state;
  const arma::fmat full = net.infer(params, data.x, data.shape);
  const double full_loss = SoftmaxCrossEntropy().value(full, data.labels);
  // Batches dealt out to 1, 2 and 3 threads give the same outputs and metrics.
  for (const std::size_t threads : {1u, 2u, 3u}) {
    const arma::fmat batched = predict(net, params, state, data.x, data.shape, 10, threads);
    BOOST_TEST(arma::approx_equal(full, batched, "absdiff", 0.0f), threads << " threads");
    const Metrics m = evaluate(net, params, state, SoftmaxCrossEntropy(), data, 7, threads);
    BOOST_TEST(std::abs(m.loss - full_loss) < 1e-6);
    BOOST_TEST(m.accuracy == accuracy(full, data.labels), boost::test_tools::tolerance(1e-12));
    BOOST_TEST(m.samples == 103u);
  }
}

BOOST_AUTO_TEST_CASE(fit_moves_the_state_and_evaluate_and_predict_infer_with_it) {
  // After fit, the state holds running statistics; evaluate and predict run in inference
  // (BatchNorm on the running statistics, Dropout the identity), so batches of any size on
  // any threads give infer's outputs on the whole data, not the batches' own statistics.
  const Network net{Dense(2, 8), BatchNorm(8), ReLU(), Dropout({.rate = 0.3}), Dense(8, 2)};
  const Dataset<float> data = blobs(103, 3);
  Rng rng(2);
  TreeF params = net.init(data.shape, he_normal(), rng);
  TreeF state = net.init_state(data.shape);
  const TreeF initial_state = state;
  fit(net, params, state, adam({.learning_rate = 0.01}), SoftmaxCrossEntropy(), data,
      {.epochs = 3, .batch_size = 16, .progress = Progress::silent});
  BOOST_TEST(!state.identical(initial_state));
  const arma::fmat full = net.infer(params, data.x, data.shape, state);
  BOOST_TEST(!arma::approx_equal(full, net.infer(params, data.x, data.shape, initial_state),
                                 "absdiff", 1e-3f));
  for (const std::size_t threads : {1u, 2u}) {
    const arma::fmat batched = predict(net, params, state, data.x, data.shape, 10, threads);
    BOOST_TEST(arma::approx_equal(full, batched, "absdiff", 0.0f), threads << " threads");
    const Metrics m = evaluate(net, params, state, SoftmaxCrossEntropy(), data, 7, threads);
    BOOST_TEST(m.accuracy == accuracy(full, data.labels), boost::test_tools::tolerance(1e-12));
  }
}

BOOST_AUTO_TEST_CASE(evaluate_names_a_bad_label_by_its_index_in_the_data_on_any_thread_count) {
  const Network net = small_net();
  Dataset<float> data = blobs(90, 3);
  data.labels[75] = 5;  // in the eleventh batch of 7
  Rng rng(2);
  const TreeF params = net.init(data.shape, he_normal(), rng);
  std::string one, two;
  try {
    evaluate(net, params, TreeF{}, SoftmaxCrossEntropy(), data, 7, 1);
  } catch (const DataError& e) {
    one = e.what();
  }
  try {
    evaluate(net, params, TreeF{}, SoftmaxCrossEntropy(), data, 7, 2);
  } catch (const DataError& e) {
    two = e.what();
  }
  BOOST_TEST(one.find("sample 75 has label 5") != std::string::npos, one);
  BOOST_TEST(two == one);
  BOOST_CHECK_THROW(evaluate(net, params, TreeF{}, SoftmaxCrossEntropy(), data, 7, 0), ConfigError);
}

BOOST_AUTO_TEST_CASE(history_is_written_as_csv) {
  History h;
  EpochLog e;
  e.epoch = 1;
  e.loss = 0.5;
  e.accuracy = 0.75;
  e.seconds = 2;
  h.epochs.push_back(e);
  BOOST_TEST(h.csv() == "epoch,loss,accuracy,val_loss,val_accuracy,seconds\n1,0.5,0.75,,,2\n");
  const std::string path = "/tmp/layercache_history_test.csv";
  h.write_csv(path);
  std::ifstream f(path);
  std::stringstream content;
  content << f.rdbuf();
  BOOST_TEST(content.str() == h.csv());
  std::remove(path.c_str());
}

BOOST_AUTO_TEST_CASE(fit_on_data_whose_targets_are_its_inputs_equals_fit_on_a_copy_of_the_inputs) {
  // An autoencoder's data: no copy of x as targets, the same training as with one, on one
  // thread and with each batch split across two.
  const Network net{Dense(2, 1), Tanh(), Dense(1, 2)};
  const Dataset<float> copied = [] {
    Dataset<float> d = blobs(120, 5);
    d.labels.reset();
    d.n_classes = 0;
    d.targets = d.x;
    return d;
  }();
  const Dataset<float> own = inputs_as_targets(blobs(120, 5));
  BOOST_TEST(own.targets.is_empty());
  for (const std::size_t threads : {1u, 2u}) {
    Rng rng(6);
    const TreeF initial = net.init(own.shape, xavier_uniform(), rng);
    TreeF a = initial, b = initial, state;
    const FitOptions<float> options{.epochs = 3, .batch_size = 16, .validation = &own,
                                    .progress = Progress::silent, .threads = threads};
    const History ha = fit(net, a, state, adam({.learning_rate = 0.01}), MeanSquaredError(), own,
                           options);
    const History hb = fit(net, b, state, adam({.learning_rate = 0.01}), MeanSquaredError(),
                           copied, options);
    BOOST_TEST(a.identical(b), threads << " threads");
    BOOST_TEST(ha.epochs.back().loss == hb.epochs.back().loss);
    BOOST_TEST(ha.epochs.back().val_loss == hb.epochs.back().val_loss);
    BOOST_TEST(ha.epochs.back().loss < ha.epochs.front().loss);
    BOOST_TEST(evaluate(net, a, state, MeanSquaredError(), own).loss ==
               evaluate(net, b, state, MeanSquaredError(), copied).loss);
  }
}

BOOST_AUTO_TEST_CASE(data_whose_targets_are_its_inputs_needs_an_output_of_the_input_shape) {
  const Network net{Dense(2, 3)};
  const Dataset<float> data = inputs_as_targets(blobs(20, 5));
  Rng rng(6);
  TreeF params = net.init(data.shape, xavier_uniform(), rng);
  TreeF state;
  const TreeF before = params;
  BOOST_CHECK_EXCEPTION(
      fit(net, params, state, sgd(), MeanSquaredError(), data,
          FitOptions<float>{.epochs = 1, .progress = Progress::silent}),
      ShapeError, [](const ShapeError& e) {
        return std::string(e.what()) ==
               "training data: the data's targets are its inputs, (2), but the network's output is (3)";
      });
  BOOST_TEST(params.identical(before));
}

BOOST_AUTO_TEST_CASE(a_binary_classifier_with_one_output_trains_and_reports_accuracy) {
  // One logit per sample and labels 0/1: binary cross-entropy with logits; accuracy is the
  // share of samples whose logit has the label's sign.
  const Network net{Dense(2, 8), Tanh(), Dense(8, 1)};
  const Dataset<float> data = blobs(200, 4);
  Rng rng(3);
  TreeF params = net.init(data.shape, xavier_uniform(), rng);
  TreeF state;
  const History h = fit(net, params, state, adam({.learning_rate = 0.02}),
                        BinaryCrossEntropyWithLogits(), data,
                        FitOptions<float>{.epochs = 10, .batch_size = 20, .progress = Progress::silent});
  BOOST_TEST(h.epochs.back().accuracy > 0.9);
  const Metrics m = evaluate(net, params, state, BinaryCrossEntropyWithLogits(), data);
  BOOST_TEST(m.accuracy == binary_accuracy(net.infer(params, data.x, data.shape), data.labels),
             boost::test_tools::tolerance(1e-12));
}

// ---- Mistakes fit flags ----------------------------------------------------------------

namespace {

// The warnings fit gives `net` trained for one epoch on the blobs with `lr`, and its log.
History fit_and_warn(const Network& net, double lr, std::string* log_text = nullptr) {
  const Dataset<float> data = blobs(200, 5);
  Rng rng(6);
  TreeF params = net.init(data.shape, he_normal(), rng);
  TreeF state = net.init_state(data.shape);
  std::ostringstream log;
  const History h = fit(net, params, state, sgd({.learning_rate = lr}), SoftmaxCrossEntropy(),
                        data,
                        FitOptions<float>{.epochs = 1, .batch_size = 10,
                                          .progress = Progress::lines, .log = &log});
  if (log_text) *log_text = log.str();
  return h;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_network_ending_in_softmax_under_softmax_cross_entropy_is_flagged_once) {
  std::string log;
  const History h = fit_and_warn(Network{Dense(2, 8), ReLU(), Dense(8, 2), Softmax()}, 0.1, &log);
  BOOST_TEST_REQUIRE(h.warnings.size() == 1u);
  BOOST_TEST(h.warnings[0].find("ends in softmax (softmax1)") != std::string::npos, h.warnings[0]);
  BOOST_TEST(h.warnings[0].find("Remove the Softmax layer") != std::string::npos, h.warnings[0]);
  BOOST_TEST(log.find("warning: the network ends in softmax") != std::string::npos, log);
  // Inside a nested network the path names the layer.
  const History nested =
      fit_and_warn(Network{Dense(2, 8), ReLU(), Network{Dense(8, 2), Softmax()}}, 0.1);
  BOOST_TEST_REQUIRE(nested.warnings.size() == 1u);
  BOOST_TEST(nested.warnings[0].find("(network1/softmax1)") != std::string::npos,
             nested.warnings[0]);
}

BOOST_AUTO_TEST_CASE(logits_and_log_softmax_under_softmax_cross_entropy_give_no_warning) {
  // softmax(log_softmax(z)) = softmax(z): ending in LogSoftmax is harmless.
  BOOST_TEST(fit_and_warn(small_net(), 0.1).warnings.empty());
  BOOST_TEST(fit_and_warn(Network{Dense(2, 8), ReLU(), Dense(8, 2), LogSoftmax()}, 0.1)
                 .warnings.empty());
}

BOOST_AUTO_TEST_CASE(a_learning_rate_that_makes_the_first_losses_explode_is_flagged_once) {
  // Least squares on standard normal inputs: the loss's curvature is about 2 along every
  // weight, so gradient descent diverges for learning rates above 1; at 2.5 the error is
  // multiplied by about -4 each step (the loss by 16), still finite after an epoch of 20 steps.
  const Network net{Dense(2, 1)};
  Rng rng(7);
  Dataset<float> data;
  data.shape = Shape{2};
  data.x.set_size(2, 200);
  for (float& v : data.x) v = float(rng.normal());
  data.targets = arma::fmat{{1.0f, -2.0f}} * data.x;
  auto run = [&](double lr, std::string* log_text) {
    Rng init(8);
    TreeF params = net.init(data.shape, zeros(), init);
    TreeF state;
    std::ostringstream log;
    const History h = fit(net, params, state, sgd({.learning_rate = lr}), MeanSquaredError(),
                          data,
                          FitOptions<float>{.epochs = 1, .batch_size = 10,
                                            .progress = Progress::lines, .log = &log});
    if (log_text) *log_text = log.str();
    return h;
  };
  std::string log;
  const History h = run(2.5, &log);
  BOOST_TEST_REQUIRE(h.warnings.size() == 1u);
  BOOST_TEST(h.warnings[0].find("the learning rate is probably too large") != std::string::npos,
             h.warnings[0]);
  BOOST_TEST(log.find("warning: the loss grew from") != std::string::npos, log);
  BOOST_TEST(run(0.1, nullptr).warnings.empty());  // converging: no warning
}

// ===== a steady-state step allocates nothing ===============================================

namespace {

// Skips a case in a build that cannot count heap allocations (under AddressSanitizer).
boost::test_tools::assertion_result allocations_are_counted(boost::unit_test::test_unit_id) {
  boost::test_tools::assertion_result counted(lcbench::alloc::available());
  counted.message() << "heap allocations are not counted under AddressSanitizer";
  return counted;
}

// Heap allocations of three steps after three steps of warm-up, in which every buffer takes
// its final shape.
template <class Step>
std::uint64_t steady_state_allocations(const Step& step) {
  for (int i = 0; i < 3; ++i) step();
  lcbench::alloc::Scope counting;
  for (int i = 0; i < 3; ++i) step();
  return counting.counts().allocations();
}

}  // namespace

// Paths longer than a std::string holds without the heap ("block_with_a_long_name/inner/
// dense1/weight") once made every step of a batch split across threads allocate: summing the
// shards' gradients walked them by path.
BOOST_AUTO_TEST_CASE(a_steady_state_step_of_a_network_of_combinators_allocates_nothing,
                     *boost::unit_test::precondition(allocations_are_counted)) {
  const Network net{
      Dense(8, 32), ReLU(),
      named("block_with_a_long_name", Residual(Network{Dense(32, 32), ReLU(), Dense(32, 32)})),
      named("projected_block", Residual(Network{Dense(32, 24), Tanh()}, Dense(32, 24))),
      Dense(24, 3)};
  for (const Split split : {Split::batch, Split::layers}) {
    for (const std::size_t threads : {1u, 2u}) {
      Rng rng(9);
      Trainee t(net, Shape{8}, rng, 0.01, threads, split);
      const arma::fmat x(8, 64, arma::fill::randn);
      const arma::uvec labels = arma::randi<arma::uvec>(64, arma::distr_param(0, 2));
      const Needs needs{.input = false};
      auto step = [&] {
        train_step(net, t.params, t.state, t.opt, t.opt_state, SoftmaxCrossEntropy(), x,
                   Shape{8}, labels, needs, Context{}, t.ws);
      };
      const std::uint64_t allocations = steady_state_allocations(step);
      BOOST_TEST(allocations == 0u, threads << " threads, split " << int(split) << ": "
                                            << allocations << " allocations in 3 steps");
    }
  }
}

// BatchNorm's statistics, Dropout's masks and the new state a step hands over reuse last
// step's buffers too: the state is swapped into place, never copied.
BOOST_AUTO_TEST_CASE(a_steady_state_step_of_a_cnn_with_batch_norm_and_dropout_allocates_nothing,
                     *boost::unit_test::precondition(allocations_are_counted)) {
  const Network net{Conv2D({.in_channels = 1, .out_channels = 4, .padding = 1}),
                    BatchNorm(4),
                    ReLU(),
                    Dropout2D({.rate = 0.1}),
                    MaxPool2D({.kernel = 2}),
                    Flatten(),
                    Dense(4 * 4 * 4, 16),
                    BatchNorm(16),
                    ReLU(),
                    Dropout({.rate = 0.3}),
                    Dense(16, 3)};
  const Shape image{1, 8, 8};
  for (const Split split : {Split::batch, Split::layers}) {
    for (const std::size_t threads : {1u, 2u}) {
      Rng rng(9);
      Trainee t(net, image, rng, 0.01, threads, split);
      t.state = net.init_state(image);
      const arma::fmat x(64, 64, arma::fill::randn);
      const arma::uvec labels = arma::randi<arma::uvec>(64, arma::distr_param(0, 2));
      const Needs needs{.input = false};
      Rng draws(4);
      Context ctx;
      ctx.rng = &draws;
      auto step = [&] {
        train_step(net, t.params, t.state, t.opt, t.opt_state, SoftmaxCrossEntropy(), x, image,
                   labels, needs, ctx, t.ws);
      };
      step();
      const TreeF before = t.state;
      const std::uint64_t allocations = steady_state_allocations(step);
      BOOST_TEST(allocations == 0u, threads << " threads, split " << int(split) << ": "
                                            << allocations << " allocations in 3 steps");
      BOOST_TEST(!t.state.identical(before));  // the running statistics moved
    }
  }
}

// ===== state under data parallelism ========================================================

namespace {

// `steps` steps of a small CNN with BatchNorm on one batch of 64 images, split by batch
// across `threads`; returns the params and the state.
template <class T>
std::pair<Tree<T>, Tree<T>> train_batch_norm(std::size_t threads, int steps) {
  const Network net{Conv2D({.in_channels = 1, .out_channels = 3, .padding = 1}), BatchNorm(3),
                    ReLU(), Flatten(), Dense(75, 8), BatchNorm(8), Tanh(), Dense(8, 3)};
  const Shape image{1, 5, 5};
  Rng rng(21);
  Tree<T> params = net.init<T>(image, he_normal(), rng);
  Tree<T> state = net.init_state<T>(image);
  const Optimizer opt = momentum({.learning_rate = 0.05, .momentum = 0.9});
  OptState<T> opt_state = opt.init(params);
  StepWorkspace<T> ws;
  ws.threads = threads;
  ws.split = Split::batch;
  arma::Mat<T> x(25, 64);
  for (T& v : x) v = T(rng.normal(1.0, 2.0));  // far from mean 0, variance 1
  arma::uvec labels(64);
  for (arma::uword& l : labels) l = rng.below(3);
  for (int i = 0; i < steps; ++i)
    train_step(net, params, state, opt, opt_state, SoftmaxCrossEntropy(), x, image, labels,
               Needs{.input = false}, Context{}, ws);
  return {params, state};
}

template <class T>
double worst_relative_difference(const Tree<T>& a, const Tree<T>& b) {
  double worst = 0;
  for (const std::string& path : b.paths()) {
    const arma::mat x = arma::conv_to<arma::mat>::from(a.at(path).value());
    const arma::mat y = arma::conv_to<arma::mat>::from(b.at(path).value());
    worst = std::max(worst, arma::abs(x - y).max() / (1e-3 + arma::abs(y).max()));
  }
  return worst;
}

}  // namespace

BOOST_AUTO_TEST_CASE(batch_norm_split_across_threads_uses_the_whole_batch_statistics) {
  // Each shard sees half the batch; statistics of a half would move the running means and
  // variances (and so every later output) far more than float rounding does.
  const int saved = blas_threads();
  set_blas_threads(1);
  const auto [params_1, state_1] = train_batch_norm<double>(1, 10);
  const auto [params_2, state_2] = train_batch_norm<double>(2, 10);
  BOOST_TEST(worst_relative_difference(params_2, params_1) < 1e-12);
  BOOST_TEST(worst_relative_difference(state_2, state_1) < 1e-12);
  const auto [float_params_1, float_state_1] = train_batch_norm<float>(1, 10);
  const auto [float_params_2, float_state_2] = train_batch_norm<float>(2, 10);
  BOOST_TEST(worst_relative_difference(float_params_2, float_params_1) < 1e-4);
  BOOST_TEST(worst_relative_difference(float_state_2, float_state_1) < 1e-4);
  BOOST_TEST(!float_params_2.identical(float_params_1));  // the shards ran
  set_blas_threads(saved);
}

BOOST_AUTO_TEST_CASE(a_network_with_state_is_split_across_threads_not_run_on_one) {
  // The automatic split divides a large batch for a network with state too.
  const Network net{Dense(4, 8), BatchNorm(8), Dense(8, 2)};
  Rng rng(3);
  TreeF params = net.init(Shape{4}, he_normal(), rng);
  TreeF state = net.init_state(Shape{4});
  const Optimizer opt = sgd();
  OptStateF opt_state = opt.init(params);
  StepWorkspace<float> ws;
  ws.threads = 2;
  const arma::fmat x(4, 64, arma::fill::randn);
  const arma::uvec labels = arma::randi<arma::uvec>(64, arma::distr_param(0, 1));
  train_step(net, params, state, opt, opt_state, SoftmaxCrossEntropy(), x, Shape{4}, labels,
             Needs{.input = false}, Context{}, ws);
  BOOST_TEST(ws.dy.n_cols == 32u);  // the first shard's half of the batch
}

BOOST_AUTO_TEST_CASE(a_shard_that_fails_releases_the_others_waiting_for_its_batch_sums) {
  // Shard 1 stops before BatchNorm's sums in forward (a NaN input with check_finite), or
  // after them but before those of backward (a label out of range): shard 0, waiting for its
  // sums, must be released, and the step throws the one-pass error and changes nothing.
  const Network net{Dense(3, 8), BatchNorm(8), Tanh(), Dense(8, 2)};
  for (const bool nan_input : {true, false}) {
    Rng rng(6);
    Trainee t(net, Shape{3}, rng, 0.1, 2, Split::batch);
    t.state = net.init_state(Shape{3});
    arma::fmat x(3, 64, arma::fill::randn);
    arma::uvec labels = arma::randi<arma::uvec>(64, arma::distr_param(0, 1));
    Context ctx;
    ctx.check_finite = true;
    train_step(net, t.params, t.state, t.opt, t.opt_state, SoftmaxCrossEntropy(), x, Shape{3},
               labels, Needs{.input = false}, ctx, t.ws);
    const TreeF params_before = t.params, state_before = t.state;
    if (nan_input)
      x(1, 50) = std::numeric_limits<float>::quiet_NaN();
    else
      labels[50] = 7;
    auto step = [&] {
      train_step(net, t.params, t.state, t.opt, t.opt_state, SoftmaxCrossEntropy(), x, Shape{3},
                 labels, Needs{.input = false}, ctx, t.ws);
    };
    if (nan_input)
      BOOST_CHECK_THROW(step(), NumericError);
    else
      BOOST_CHECK_THROW(step(), DataError);
    BOOST_TEST(t.params.identical(params_before));
    BOOST_TEST(t.state.identical(state_before));
  }
}
