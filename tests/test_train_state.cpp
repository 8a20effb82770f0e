// Specification of a training run as one value: TrainState by path, saved and loaded in one
// call, stepped by the short train_step, continued by fit bit for bit after a resume, and the
// checkpoint callback that keeps the last files and the best.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <tuple>
#include <vector>

#include "layercache/layercache.hpp"
#include "support/labelled_points.hpp"
#include "support/temp_dir.hpp"

using namespace layercache;

namespace {

// Points in the square [-2, 2]², labelled 1 inside the unit circle and 0 outside: not
// linearly separable, so the loss keeps moving for many epochs.
template <class T = float>
Dataset<T> ring(std::size_t n, std::uint64_t seed) {
  return testing_data::labelled_points<T>(n, 2, seed, [](std::size_t, Rng& rng) {
    const double a = rng.uniform(-2, 2), b = rng.uniform(-2, 2);
    return std::tuple(a, b, a * a + b * b < 1 ? 1u : 0u);
  });
}

Network ring_net() { return Network{Dense(2, 16), Tanh(), Dense(16, 2)}; }

// ring_net with state (BatchNorm's running statistics) and draws (Dropout's masks): what a
// resume must carry besides params and optimizer state.
Network stateful_ring_net() {
  return Network{Dense(2, 16), BatchNorm(16), Tanh(), Dropout({.rate = 0.2}), Dense(16, 2)};
}

// Adam on a cosine schedule, with a plateau reduction: every kind of optimizer state a
// resume must carry (moments, the step count the schedule reads, the plateau's memory).
Optimizer scheduled_adam() {
  return chain(adam({.learning_rate = cosine_decay({.peak_value = 0.05, .decay_steps = 200})}),
               reduce_on_plateau({.factor = 0.5, .patience = 1}));
}

FitOptions<float> quiet(std::size_t epochs, std::size_t threads) {
  return {.epochs = epochs, .batch_size = 32, .progress = Progress::silent, .threads = threads};
}

using testing_files::TempDir;

}  // namespace

BOOST_AUTO_TEST_SUITE(train_state)

BOOST_AUTO_TEST_CASE(a_run_is_one_tree_addressed_by_path_and_comes_back_from_it_bit_identical) {
  const Network net = ring_net();
  TrainStateF run = init_train_state<float>(net, Shape{2}, scheduled_adam(), he_normal(), 4);
  run.step = (std::int64_t(1) << 40) + 3;  // beyond float's whole numbers: stored exactly
  run.epoch = 7;
  run.history.epochs.push_back(EpochLog{.epoch = 7, .loss = 0.25, .samples = 100});
  const TreeF tree = run.tree();
  for (const char* path : {"params/dense1/weight", "params/dense2/bias", "opt/count",
                           "opt/scale_by_adam/mu/dense1/weight", "rng", "step", "epoch",
                           "history"})
    BOOST_TEST(tree.contains(path), path);
  BOOST_TEST(tree.at("rng").value().n_rows == 16u);
  BOOST_TEST(tree.at("history").value().n_rows == 7u);

  TrainStateF back = TrainStateF::from_tree(tree);
  BOOST_TEST(back.params.identical(run.params));
  BOOST_TEST(back.opt.tree().identical(run.opt.tree()));
  BOOST_TEST(back.step == run.step);
  BOOST_TEST(back.epoch == 7);
  BOOST_TEST((back.rng.state() == run.rng.state()));
  BOOST_TEST(back.history.epochs.size() == 1u);
  BOOST_TEST(back.history.epochs[0].loss == 0.25);
  BOOST_TEST(std::isnan(back.history.epochs[0].val_loss));
}

BOOST_AUTO_TEST_CASE(a_run_saved_in_one_call_loads_back_whole_in_float_and_double) {
  const TempDir tmp("layercache-run");
  const Network net = ring_net();
  TrainStateD run = init_train_state<double>(net, Shape{2}, adam({}), he_normal(), 5);
  fit(net, run, adam({}), SoftmaxCrossEntropy(), ring<double>(64, 1),
      {.epochs = 2, .batch_size = 16, .progress = Progress::silent});
  save_train_state(tmp.file("run.h5"), run, "ring, adam");
  const TrainStateD back = load_train_state<double>(tmp.file("run.h5"));
  BOOST_TEST(back.tree().identical(run.tree()));
  BOOST_TEST(back.step == 8);
  BOOST_TEST(load_checkpoint<double>(tmp.file("run.h5")).info.step == 8);
  BOOST_TEST(load_checkpoint<double>(tmp.file("run.h5")).info.metadata == "ring, adam");
  BOOST_CHECK_THROW(load_train_state<float>(tmp.file("run.h5")), ConfigError);  // no conversion
}

BOOST_AUTO_TEST_CASE(a_checkpoint_that_is_not_a_run_is_a_data_error_listing_the_entries) {
  const TempDir tmp("layercache-run");
  const Network net = ring_net();
  Rng rng(1);
  save_params(tmp.file("params.h5"), net.init<float>(Shape{2}, he_normal(), rng));
  try {
    load_train_state<float>(tmp.file("params.h5"));
    BOOST_FAIL("a params file loaded as a run");
  } catch (const DataError& e) {
    BOOST_TEST(e.path() == tmp.file("params.h5"));
    BOOST_TEST(std::string(e.what()).find("'state' is missing") != std::string::npos, e.what());
  }
  TreeF tree = init_train_state<float>(net, Shape{2}, adam({}), he_normal(), 1).tree();
  tree.at("step").value()(0, 0) = 0.5f;
  BOOST_CHECK_THROW(TrainStateF::from_tree(tree), DataError);
}

BOOST_AUTO_TEST_CASE(the_short_train_step_is_the_twelve_argument_step_drawing_from_the_run) {
  const Network net = ring_net();
  const Dataset<float> data = ring(64, 2);
  const Optimizer opt = scheduled_adam();
  const SoftmaxCrossEntropy loss;
  TrainStateF run = init_train_state<float>(net, data.shape, opt, he_normal(), 3);
  TrainStateF twin = run;
  const BatchPlan plan = batches(data.size(), 32, false, &run.rng);
  for (const BatchRange& range : plan.ranges) train_step(net, run, opt, loss, data, plan, range);
  train_step(net, run, opt, loss, data);  // a whole data set as one batch

  const BatchPlan twin_plan = batches(data.size(), 32, false, &twin.rng);
  const Context ctx{.mode = Mode::train, .rng = &twin.rng};
  StepWorkspace<float> ws;
  for (const BatchRange& range : twin_plan.ranges)
    train_step(net, twin.params, twin.state, opt, twin.opt, loss, data, twin_plan, range,
               {.input = false}, ctx, ws);
  train_step(net, twin.params, twin.state, opt, twin.opt, loss, data.x, data.shape, data.labels,
             {.input = false}, ctx, ws);
  BOOST_TEST(run.params.identical(twin.params));
  BOOST_TEST(run.step == 3);
  BOOST_TEST((run.rng.state() == twin.rng.state()));
}

BOOST_AUTO_TEST_CASE(fit_continues_a_run_up_to_options_epochs_and_keeps_its_history) {
  const Network net = ring_net();
  const Dataset<float> data = ring(96, 3);
  TrainStateF run = init_train_state<float>(net, data.shape, adam({}), he_normal(), 1);
  fit(net, run, adam({}), SoftmaxCrossEntropy(), data, quiet(2, 1));
  const History history = fit(net, run, adam({}), SoftmaxCrossEntropy(), data, quiet(5, 1));
  BOOST_TEST(run.epoch == 5);
  BOOST_TEST(run.step == 5 * 3);
  BOOST_TEST(history.epochs.size() == 5u);
  BOOST_TEST(history.epochs.back().epoch == 5u);
  const TreeF before = run.params;
  fit(net, run, adam({}), SoftmaxCrossEntropy(), data, quiet(5, 1));  // there already
  BOOST_TEST(run.params.identical(before));
  run.epoch = -1;
  BOOST_CHECK_THROW(fit(net, run, adam({}), SoftmaxCrossEntropy(), data, quiet(5, 1)),
                    ConfigError);
  BOOST_TEST(run.params.identical(before));
}

// The heart of it: train 6 epochs in one go, or 3, save, load in a fresh run object, and 3
// more; with shuffling, a schedule and a plateau reduction, on 1 and 2 threads; and with a
// network with BatchNorm and Dropout, whose running statistics and masks resume exactly too.
BOOST_AUTO_TEST_CASE(fit_resumed_from_a_saved_run_ends_bit_identical_to_an_uninterrupted_run) {
  const Dataset<float> data = ring(160, 4), validation = ring(64, 5);
  const Optimizer opt = scheduled_adam();
  for (const Network& net : {ring_net(), stateful_ring_net()}) {
    for (const std::size_t threads : {1u, 2u}) {
      FitOptions<float> options = quiet(6, threads);
      options.validation = &validation;
      TrainStateF whole = init_train_state<float>(net, data.shape, opt, he_normal(), 9);
      fit(net, whole, opt, SoftmaxCrossEntropy(), data, options);

      const TempDir tmp("layercache-resume");
      TrainStateF first = init_train_state<float>(net, data.shape, opt, he_normal(), 9);
      options.epochs = 3;
      fit(net, first, opt, SoftmaxCrossEntropy(), data, options);
      save_train_state(tmp.file("run.h5"), first);
      TrainStateF resumed = load_train_state<float>(tmp.file("run.h5"));
      options.epochs = 6;
      fit(net, resumed, opt, SoftmaxCrossEntropy(), data, options);

      BOOST_TEST(resumed.params.identical(whole.params), "threads " << threads);
      BOOST_TEST(resumed.state.identical(whole.state), "threads " << threads);
      BOOST_TEST(resumed.opt.tree().identical(whole.opt.tree()), "threads " << threads);
      BOOST_TEST((resumed.rng.state() == whole.rng.state()));
      BOOST_TEST(resumed.step == whole.step);
      BOOST_TEST(resumed.history.epochs.size() == 6u);
      for (std::size_t e = 3; e < 6; ++e)
        BOOST_TEST(resumed.history.epochs[e].loss == whole.history.epochs[e].loss);
      // Not trivially so: the epochs after the save moved the params (and the state).
      BOOST_TEST(!resumed.params.identical(first.params));
      if (whole.state.n_tensors() != 0) BOOST_TEST(!resumed.state.identical(first.state));
    }
  }
}

BOOST_AUTO_TEST_CASE(the_checkpoint_callback_keeps_the_last_files_and_the_best_epoch) {
  const TempDir tmp("layercache-ckpt-callback");
  const std::string dir = tmp.file("ckpt");
  const Network net = ring_net();
  const Dataset<float> data = ring(96, 6);
  TrainStateF run = init_train_state<float>(net, data.shape, adam({}), he_normal(), 2);
  FitOptions<float> options = quiet(5, 1);
  options.callbacks.push_back(save_checkpoints<float>({.directory = dir, .keep_last = 2, .monitor = "loss"}));
  fit(net, run, adam({}), SoftmaxCrossEntropy(), data, options);

  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    names.push_back(entry.path().filename());
  std::sort(names.begin(), names.end());
  BOOST_TEST(names == (std::vector<std::string>{"best.h5", "epoch-000004.h5", "epoch-000005.h5"}),
             boost::test_tools::per_element());
  BOOST_TEST(latest_checkpoint(dir) == dir + "/epoch-000005.h5");
  const TrainStateF last = load_train_state<float>(latest_checkpoint(dir));
  BOOST_TEST(last.params.identical(run.params));
  // best.h5 holds the epoch with the lowest loss.
  std::size_t best = 0;
  for (std::size_t e = 1; e < run.history.epochs.size(); ++e)
    if (float(run.history.epochs[e].loss) < float(run.history.epochs[best].loss)) best = e;
  BOOST_TEST(load_train_state<float>(dir + "/best.h5").epoch == std::int64_t(best + 1));
  BOOST_TEST(latest_checkpoint(tmp.file("none")).empty());
}

BOOST_AUTO_TEST_CASE(the_checkpoint_callback_refuses_what_cannot_work_before_training) {
  BOOST_CHECK_THROW(save_checkpoints<float>({}), ConfigError);
  BOOST_CHECK_THROW(save_checkpoints<float>({.directory = "d", .keep_last = 0}), ConfigError);
  BOOST_CHECK_THROW(save_checkpoints<float>({.directory = "d", .monitor = "speed"}), ConfigError);
  const TempDir tmp("layercache-ckpt-callback");
  const Network net = ring_net();
  TrainStateF run = init_train_state<float>(net, Shape{2}, adam({}), he_normal(), 2);
  const TreeF before = run.params;
  FitOptions<float> options = quiet(2, 1);
  options.callbacks.push_back(
      save_checkpoints<float>({.directory = tmp.file("d"), .monitor = "val_loss"}));
  BOOST_CHECK_THROW(fit(net, run, adam({}), SoftmaxCrossEntropy(), ring(32, 1), options),
                    ConfigError);
  BOOST_TEST(run.params.identical(before));
  BOOST_TEST(run.epoch == 0);
}

BOOST_AUTO_TEST_SUITE_END()
