// Specification of training across processes over MPI, run by scripts/check_mpi as
// `mpirun -np 2 test_mpi` (every rank runs every case; a case checks what its rank sees).
// With N ranks at batch B, training must end where one process ends at batch N·B: the same
// batches (the distributed sampler), the gradients summed across ranks, the same params on
// every rank. An error on one rank must reach every rank, naming it, never leave one waiting.
#define BOOST_TEST_MODULE layercache_mpi
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <sstream>
#include <string>
#include <tuple>

#include "layercache/layercache.hpp"
#include "layercache/mpi.hpp"
#include "support/labelled_points.hpp"
#include "support/temp_dir.hpp"

using namespace layercache;

namespace {

// MPI for the whole test program.
struct MpiFixture {
  MpiFixture()
      : env(&boost::unit_test::framework::master_test_suite().argc,
            &boost::unit_test::framework::master_test_suite().argv) {}
  mpi::Environment env;
};
BOOST_TEST_GLOBAL_FIXTURE(MpiFixture);

// Points in [-2, 2]², labelled 1 inside the unit circle.
template <class T>
Dataset<T> ring(std::size_t n, std::uint64_t seed) {
  return testing_data::labelled_points<T>(n, 2, seed, [](std::size_t, Rng& rng) {
    const double a = rng.uniform(-2, 2), b = rng.uniform(-2, 2);
    return std::tuple(a, b, a * a + b * b < 1 ? 1u : 0u);
  });
}

Network ring_net() { return Network{Dense(2, 16), Tanh(), Dense(16, 16), Tanh(), Dense(16, 2)}; }

// A layer with state, as BatchNorm's running statistics: y = x, and a training forward sets
// its state `mean` (n) to 0.9 · mean + 0.1 · the batch's mean of x.
class RunningMean : public LayerImpl<RunningMean, NoCache> {
 public:
  static constexpr const char* kind_name = "running_mean";
  explicit RunningMean(std::size_t n) : n_(n) {}
  Shape output_shape(const Shape& input) const override { return require_size(input, n_); }
  std::vector<TensorSpec> state_specs(const Shape&) const override {
    return {{"mean", n_, 1, Role::other}};
  }
  template <class T>
  void forward_t(const Tensors<T>&, const ConstBuffer<T>& x, arma::Mat<T>& y, NoCache<T>&,
                 const LayerCall<T>& call) const {
    y = *x;
    if (arma::Mat<T>* mean = call.new_state("mean"))
      *mean = T(0.9) * call.state("mean") + T(0.1) * arma::Mat<T>(arma::mean(*x, 1));
  }
  template <class T>
  void backward_t(const Tensors<T>&, const NoCache<T>&, const arma::Mat<T>& dy,
                  Gradients<T>& grads) const {
    if (auto* dx = grads.dx()) *dx = dy;
  }

 private:
  std::size_t n_;
};

// The largest |a − b| / max(|a| + |b|, 1e-30) over every leaf.
template <class T>
double max_relative_difference(const Tree<T>& a, const Tree<T>& b) {
  double worst = 0;
  const auto la = flatten(a), lb = flatten(b);
  BOOST_REQUIRE_EQUAL(la.size(), lb.size());
  for (std::size_t i = 0; i < la.size(); ++i) {
    const arma::Mat<T>& x = *la[i].second;
    const arma::Mat<T>& y = *lb[i].second;
    for (arma::uword j = 0; j < x.n_elem; ++j) {
      const double d = std::abs(double(x[j]) - double(y[j]));
      worst = std::max(worst, d / std::max(std::abs(double(x[j])) + std::abs(double(y[j])), 1e-30));
    }
  }
  return worst;
}

// True when `tree` is bit for bit rank 0's.
template <class T>
bool same_as_rank_zero(Collective& group, const Tree<T>& tree) {
  Tree<T> root = tree;
  broadcast(group, root);
  double differs = root.identical(tree) ? 0 : 1;
  sum_across(group, &differs, 1);
  return differs == 0;
}

// k steps of train_step on the batches of one shuffled epoch of `data`: with the group at
// batch_size per rank, or alone at the whole group's batch.
template <class T>
TrainState<T> steps(const Layer& net, const Optimizer& opt, const Dataset<T>& data,
                    std::size_t batch_size, std::size_t k, Collective* group,
                    std::size_t bucket_bytes = std::size_t(1) << 20, std::size_t threads = 1,
                    Split split = Split::automatic) {
  TrainState<T> run = init_train_state<T>(net, data.shape, opt, he_normal(), 7);
  BatchPlan plan = batches(data.size(), batch_size, false);
  plan.reshuffle(run.rng);
  for (std::size_t b = 0; b < k; ++b)
    train_step(net, run, opt, SoftmaxCrossEntropy(), data, plan, plan[b],
               {.threads = threads, .split = split, .group = group, .bucket_bytes = bucket_bytes});
  return run;
}

// Runs f on every rank and expects every rank to throw E with `text` in its message.
template <class E, class F>
void expect_everywhere(F f, const std::string& text) {
  bool thrown = false;
  try {
    f();
  } catch (const E& e) {
    thrown = true;
    BOOST_TEST(std::string(e.what()).find(text) != std::string::npos, e.what());
  }
  BOOST_TEST(thrown);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(mpi_training)

BOOST_AUTO_TEST_CASE(the_tests_run_on_two_ranks) {
  mpi::ProcessGroup group;
  BOOST_TEST(group.size() == 2u);  // scripts/check_mpi runs mpirun -np 2
  BOOST_TEST(group.rank() < group.size());
}

BOOST_AUTO_TEST_CASE(rank_shares_are_disjoint_cover_the_batch_and_differ_by_at_most_one) {
  mpi::ProcessGroup group;
  const BatchRange share = rank_share(BatchRange{10, 17}, &group);  // 7 samples
  double counts[2] = {0, 0};
  counts[group.rank()] = double(share.size());
  sum_across(group, counts, 2);
  BOOST_TEST(counts[0] == 3.0);  // [10, 13)
  BOOST_TEST(counts[1] == 4.0);  // [13, 17)
  BOOST_TEST(share.begin == (group.rank() == 0 ? 10u : 13u));
  BOOST_TEST(rank_share(BatchRange{10, 17}, nullptr).size() == 7u);
}

BOOST_AUTO_TEST_CASE(broadcast_gives_every_rank_the_params_of_rank_zero) {
  mpi::ProcessGroup group;
  const Network net = ring_net();
  Rng rng(100 + group.rank());  // different params on each rank
  TreeF params = net.init<float>(Shape{2}, he_normal(), rng);
  Rng zero(100);
  const TreeF expected = net.init<float>(Shape{2}, he_normal(), zero);
  broadcast(group, params);
  BOOST_TEST(params.identical(expected));
}

BOOST_AUTO_TEST_CASE(broadcast_of_trees_of_another_structure_is_an_error_on_every_rank) {
  mpi::ProcessGroup group;
  TreeF tree;
  tree.add("weight", TreeF(arma::fmat(2, 2 + group.rank(), arma::fill::zeros)));
  expect_everywhere<ConfigError>([&] { broadcast(group, tree); }, "rank 1 of 2");
}

BOOST_AUTO_TEST_CASE(two_ranks_at_batch_b_give_the_params_of_one_process_at_batch_2b_in_double) {
  mpi::ProcessGroup group;
  const Network net = ring_net();
  const Dataset<double> data = ring<double>(200, 3);
  const Optimizer opt = adam({.learning_rate = 0.01});
  const TrainState<double> two = steps(net, opt, data, 8 * 2, 6, &group);
  const TrainState<double> one = steps(net, opt, data, 16, 6, nullptr);
  // The same batches and the same mean gradient, summed in another order.
  BOOST_TEST(max_relative_difference(two.params, one.params) < 1e-12);
  BOOST_TEST(same_as_rank_zero(group, two.params));
  BOOST_TEST(two.step == one.step);
  // Nothing drew from the run's stream: it is where one process leaves it.
  BOOST_TEST((two.rng.state() == one.rng.state()));
}

BOOST_AUTO_TEST_CASE(two_ranks_at_batch_b_give_the_params_of_one_process_at_batch_2b_in_float) {
  mpi::ProcessGroup group;
  const Network net = ring_net();
  const Dataset<float> data = ring<float>(200, 3);
  const Optimizer opt = sgd({.learning_rate = 0.1});
  const TrainState<float> two = steps(net, opt, data, 10 * 2, 5, &group);
  const TrainState<float> one = steps(net, opt, data, 20, 5, nullptr);
  BOOST_TEST(max_relative_difference(two.params, one.params) < 1e-5);
  BOOST_TEST(same_as_rank_zero(group, two.params));
}

BOOST_AUTO_TEST_CASE(ranks_that_split_their_share_across_threads_give_the_same_params) {
  // Each rank's share of 32 split into two shards (its shards' sum then travels as a whole),
  // or each layer's work split between its threads (its announcements travel as they come).
  mpi::ProcessGroup group;
  const Network net = ring_net();
  const Dataset<double> data = ring<double>(256, 8);
  const Optimizer opt = adam({.learning_rate = 0.01});
  const TrainState<double> one = steps(net, opt, data, 64, 4, nullptr);
  for (Split split : {Split::batch, Split::layers}) {
    const TrainState<double> two = steps(net, opt, data, 64, 4, &group, 256, 2, split);
    BOOST_TEST(max_relative_difference(two.params, one.params) < 1e-12);
    BOOST_TEST(same_as_rank_zero(group, two.params));
  }
}

BOOST_AUTO_TEST_CASE(unequal_shares_are_weighted_by_their_sizes) {
  // 7 samples a batch: 3 on rank 0, 4 on rank 1; the mean must still be over the 7.
  mpi::ProcessGroup group;
  const Network net = ring_net();
  const Dataset<double> data = ring<double>(70, 5);
  const Optimizer opt = sgd({.learning_rate = 0.5});
  const TrainState<double> two = steps(net, opt, data, 7, 4, &group);
  const TrainState<double> one = steps(net, opt, data, 7, 4, nullptr);
  BOOST_TEST(max_relative_difference(two.params, one.params) < 1e-12);
}

BOOST_AUTO_TEST_CASE(state_is_averaged_across_the_ranks_after_each_step) {
  mpi::ProcessGroup group;
  const Network net{Dense(2, 8), RunningMean(8), Tanh(), Dense(8, 2)};
  const Dataset<double> data = ring<double>(200, 3);
  const Optimizer opt = sgd({.learning_rate = 0.1});
  const TrainState<double> two = steps(net, opt, data, 16, 5, &group);
  const TrainState<double> one = steps(net, opt, data, 16, 5, nullptr);
  BOOST_TEST(max_relative_difference(two.state, one.state) < 1e-12);
  BOOST_TEST(max_relative_difference(two.params, one.params) < 1e-12);
  BOOST_TEST(same_as_rank_zero(group, two.state));
  // Without the sync each rank keeps the running mean of its own shares.
  TrainState<double> own = init_train_state<double>(net, data.shape, opt, he_normal(), 7);
  BatchPlan plan = batches(data.size(), 16, false);
  train_step(net, own, opt, SoftmaxCrossEntropy(), data, plan, plan[0],
             {.group = &group, .sync_state = false});
  BOOST_TEST(!same_as_rank_zero(group, own.state));
}

BOOST_AUTO_TEST_CASE(the_bucket_size_does_not_change_the_sums) {
  mpi::ProcessGroup group;
  const Network net = ring_net();
  const Dataset<double> data = ring<double>(200, 3);
  const Optimizer opt = adam({.learning_rate = 0.01});
  const TrainState<double> small = steps(net, opt, data, 16, 4, &group, 64);  // 8 values a bucket
  const TrainState<double> large = steps(net, opt, data, 16, 4, &group);
  BOOST_TEST(small.params.identical(large.params));
}

BOOST_AUTO_TEST_CASE(fit_on_two_ranks_follows_one_process_at_twice_the_batch) {
  mpi::ProcessGroup group;
  const Network net = ring_net();
  const Dataset<double> train = ring<double>(300, 11), validation = ring<double>(101, 12);
  const Optimizer opt = adam({.learning_rate = 0.01});
  auto run_fit = [&](Collective* g, std::size_t batch, std::ostream& log) {
    TrainState<double> run = init_train_state<double>(net, train.shape, opt, he_normal(), 2);
    fit(net, run, opt, SoftmaxCrossEntropy(), train,
        {.epochs = 3, .batch_size = batch, .validation = &validation,
         .progress = Progress::lines, .log = &log, .group = g, .bucket_bytes = 256});
    return run;
  };
  std::ostringstream log_two, log_one;
  const TrainState<double> two = run_fit(&group, 16, log_two);
  const TrainState<double> one = run_fit(nullptr, 32, log_one);
  BOOST_TEST(max_relative_difference(two.params, one.params) < 1e-11);
  BOOST_REQUIRE_EQUAL(two.history.epochs.size(), 3u);
  for (std::size_t e = 0; e < 3; ++e) {
    const EpochLog &a = two.history.epochs[e], &b = one.history.epochs[e];
    BOOST_TEST(a.samples == b.samples);
    BOOST_TEST(std::abs(a.loss - b.loss) < 1e-10);
    BOOST_TEST(a.accuracy == b.accuracy);
    BOOST_TEST(std::abs(a.val_loss - b.val_loss) < 1e-10);
    BOOST_TEST(a.val_accuracy == b.val_accuracy);
  }
  // Progress is rank 0's to print.
  if (group.rank() == 0)
    BOOST_TEST(log_two.str().find("epoch 3/3") != std::string::npos);
  else
    BOOST_TEST(log_two.str().empty());
}

BOOST_AUTO_TEST_CASE(fit_starts_every_rank_from_rank_zeros_run) {
  mpi::ProcessGroup group;
  const Network net = ring_net();
  const Dataset<float> train = ring<float>(64, 1);
  const Optimizer opt = sgd({.learning_rate = 0.1});
  TrainStateF run = init_train_state<float>(net, train.shape, opt, he_normal(), 5 + group.rank());
  fit(net, run, opt, SoftmaxCrossEntropy(), train,
      {.epochs = 1, .batch_size = 8, .progress = Progress::silent, .group = &group});
  // Params, optimizer state, stream and counters; the history's seconds are each rank's own.
  BOOST_TEST(same_as_rank_zero(group, run.params));
  BOOST_TEST(same_as_rank_zero(group, static_cast<const TreeF&>(run.opt)));
  BOOST_TEST(same_as_rank_zero(group, rng_to_tree<float>(run.rng)));
  BOOST_TEST(run.step == 4);  // 64 samples in batches of 8 × 2 ranks
}

BOOST_AUTO_TEST_CASE(evaluate_on_two_ranks_gives_the_metrics_of_the_whole_data_set) {
  mpi::ProcessGroup group;
  const Network net = ring_net();
  const Dataset<double> data = ring<double>(301, 4);
  Rng rng(1);
  const TreeD params = net.init<double>(Shape{2}, he_normal(), rng);
  const TreeD state = net.init_state<double>(Shape{2});
  const Metrics shared = evaluate(net, params, state, SoftmaxCrossEntropy(), data, 64, 1, &group);
  const Metrics alone = evaluate(net, params, state, SoftmaxCrossEntropy(), data, 64, 1);
  BOOST_TEST(shared.samples == 301u);
  BOOST_TEST(std::abs(shared.loss - alone.loss) < 1e-12);
  BOOST_TEST(shared.accuracy == alone.accuracy);
}

BOOST_AUTO_TEST_CASE(checkpoints_are_written_by_rank_zero_and_read_by_every_rank) {
  mpi::ProcessGroup group;
  // One directory for both ranks: rank 0's, its name broadcast.
  std::string dir(512, '\0');
  std::unique_ptr<testing_files::TempDir> temp;
  if (group.rank() == 0) {
    temp = std::make_unique<testing_files::TempDir>("layercache-mpi");
    dir.replace(0, temp->dir.string().size(), temp->dir.string());
  }
  group.broadcast(dir.data(), dir.size(), 0);
  dir.resize(dir.find('\0'));
  const Network net = ring_net();
  const Dataset<float> train = ring<float>(64, 1);
  const Optimizer opt = sgd({.learning_rate = 0.1});
  TrainStateF run = init_train_state<float>(net, train.shape, opt, he_normal(), 5);
  fit(net, run, opt, SoftmaxCrossEntropy(), train,
      {.epochs = 2, .batch_size = 8, .progress = Progress::silent,
       .callbacks = {save_checkpoints<float>({.directory = dir, .keep_last = 1, .monitor = ""})},
       .group = &group});
  const std::string latest = latest_checkpoint(dir);
  BOOST_TEST(std::filesystem::path(latest).filename() == "epoch-000002.h5");
  const TrainStateF loaded = load_train_state<float>(latest);
  BOOST_TEST(loaded.params.identical(run.params));
  BOOST_TEST(loaded.epoch == 2);
  double done = 1;
  sum_across(group, &done, 1);  // rank 0 removes the directory after every rank read it
}

BOOST_AUTO_TEST_CASE(a_bad_label_on_one_rank_stops_every_rank_naming_it) {
  mpi::ProcessGroup group;
  const Network net = ring_net();
  Dataset<float> train = ring<float>(64, 1);
  if (group.rank() == 1) train.labels[5] = 7;  // only rank 1 read a corrupt file
  const Optimizer opt = sgd({.learning_rate = 0.1});
  TrainStateF run = init_train_state<float>(net, train.shape, opt, he_normal(), 5);
  expect_everywhere<DataError>(
      [&] {
        fit(net, run, opt, SoftmaxCrossEntropy(), train,
            {.epochs = 1, .batch_size = 8, .progress = Progress::silent, .group = &group});
      },
      "rank 1 of 2: training data: sample 5 has label 7");
}

BOOST_AUTO_TEST_CASE(a_nan_on_one_rank_during_a_step_stops_every_rank_naming_it) {
  mpi::ProcessGroup group;
  const Network net = ring_net();
  Dataset<double> train = ring<double>(64, 1);
  if (group.rank() == 1) train.x.fill(std::numeric_limits<double>::quiet_NaN());
  const Optimizer opt = sgd({.learning_rate = 0.1});
  TrainState<double> run = init_train_state<double>(net, train.shape, opt, he_normal(), 5);
  const TreeD before = run.params;
  expect_everywhere<NumericError>(
      [&] {
        fit(net, run, opt, SoftmaxCrossEntropy(), train,
            {.epochs = 1, .batch_size = 8, .progress = Progress::silent, .group = &group});
      },
      "rank 1 of 2: grads/");
  BOOST_TEST(run.params.identical(before));  // no rank updated its params
}

BOOST_AUTO_TEST_CASE(a_layer_that_throws_on_one_rank_stops_every_rank_with_its_error) {
  mpi::ProcessGroup group;
  const Network net = ring_net();
  Dataset<double> train = ring<double>(64, 1);
  const Optimizer opt = sgd({.learning_rate = 0.1});
  TrainState<double> run = init_train_state<double>(net, train.shape, opt, he_normal(), 5);
  // With check_finite, rank 1's forward throws in its first layer, before backward starts
  // any bucket; rank 0 has started all of its buckets by then.
  if (group.rank() == 1) train.x(0, 40) = std::numeric_limits<double>::infinity();  // its share
  BatchPlan plan = batches(train.size(), 64, false);
  expect_everywhere<NumericError>(
      [&] {
        train_step(net, run, opt, SoftmaxCrossEntropy(), train, plan, plan[0],
                   {.check_finite = true, .group = &group, .bucket_bytes = 64});
      },
      "rank 1 of 2: dense1");
  // The group is still usable: the next step runs on both ranks.
  train.x(0, 40) = 0.5;
  train_step(net, run, opt, SoftmaxCrossEntropy(), train, plan, plan[0],
             {.group = &group, .bucket_bytes = 64});
  BOOST_TEST(same_as_rank_zero(group, run.params));
}

BOOST_AUTO_TEST_CASE(a_callback_that_fails_on_rank_zero_stops_every_rank) {
  mpi::ProcessGroup group;
  const Network net = ring_net();
  const Dataset<float> train = ring<float>(64, 1);
  const Optimizer opt = sgd({.learning_rate = 0.1});
  TrainStateF run = init_train_state<float>(net, train.shape, opt, he_normal(), 5);
  Callback<float> failing = [&](const EpochLog&, FitContext<float>& fit) {
    if (fit.group->rank() == 0) throw IoError("disk full", "ckpt/epoch-000001.h5");
  };
  expect_everywhere<IoError>(
      [&] {
        fit(net, run, opt, SoftmaxCrossEntropy(), train,
            {.epochs = 2, .batch_size = 8, .progress = Progress::silent, .callbacks = {failing},
             .group = &group});
      },
      "rank 0 of 2: ckpt/epoch-000001.h5: disk full");
}

BOOST_AUTO_TEST_CASE(a_batch_with_fewer_samples_than_ranks_is_refused_on_every_rank) {
  mpi::ProcessGroup group;
  const Network net = ring_net();
  const Dataset<float> train = ring<float>(33, 1);  // 2 batches of 16 and one of 1
  const Optimizer opt = sgd({.learning_rate = 0.1});
  TrainStateF run = init_train_state<float>(net, train.shape, opt, he_normal(), 5);
  expect_everywhere<ConfigError>(
      [&] {
        fit(net, run, opt, SoftmaxCrossEntropy(), train,
            {.epochs = 1, .batch_size = 8, .progress = Progress::silent, .group = &group});
      },
      "fewer than the 2 ranks");
  fit(net, run, opt, SoftmaxCrossEntropy(), train,
      {.epochs = 1, .batch_size = 8, .drop_last = true, .progress = Progress::silent,
       .group = &group});
  BOOST_TEST(run.step == 2);
}

BOOST_AUTO_TEST_SUITE_END()
