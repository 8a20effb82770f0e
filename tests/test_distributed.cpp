// Specification of the MPI-free machinery of training across processes: backward announcing
// each child's final gradients (Needs::listener), and a step with a group starting each
// bucket's sum while backward still runs the layers before it. The group here is a test
// double of one rank that records what it is asked; tests/mpi/test_mpi.cpp runs the real
// thing on two processes.
#define BOOST_TEST_MODULE distributed
#include <boost/test/unit_test.hpp>

#include <functional>
#include <string>
#include <vector>

#include "layercache/layercache.hpp"

using namespace layercache;

namespace {

// Records the nodes backward announces, in order.
struct RecordingListener final : GradsListener {
  std::vector<const void*> nodes;
  void grads_final(Tree<float>& grads) override { nodes.push_back(&grads); }
  void grads_final(Tree<double>& grads) override { nodes.push_back(&grads); }
};

// A group of one rank (sums and broadcasts change nothing) that runs `on_start` at every
// start_sum and counts the values summed.
struct OneRank final : Collective {
  std::function<void()> on_start;
  std::size_t values = 0;
  std::size_t starts = 0;
  std::size_t rank() const noexcept override { return 0; }
  std::size_t size() const noexcept override { return 1; }
  void broadcast(void*, std::size_t, std::size_t) override {}
  void start_sum(float*, std::size_t n) override { record(n); }
  void start_sum(double*, std::size_t n) override { record(n); }
  // The check at the end of a step: one flag and four numbers (loss, correct, samples, drew).
  static constexpr std::size_t check_values = 5;
  void wait() override {}
  void record(std::size_t n) {
    values += n;
    ++starts;
    if (on_start) on_start();
  }
};

Network three_layers() { return Network{Dense(4, 8), Tanh(), Dense(8, 8), Tanh(), Dense(8, 3)}; }

}  // namespace

BOOST_AUTO_TEST_SUITE(distributed)

BOOST_AUTO_TEST_CASE(a_network_announces_each_childs_gradients_after_its_backward_last_child_first) {
  const Network net = three_layers();
  Rng rng(1);
  const TreeD params = net.init<double>(Shape{4}, he_normal(), rng);
  const arma::mat x(4, 5, arma::fill::randn);
  const ForwardResult<double> fwd = net.forward(params, x);
  RecordingListener listener;
  Needs needs;
  needs.listener = &listener;
  BackwardResult<double> out;
  net.backward(params, *fwd.cache, arma::mat(3, 5, arma::fill::ones), needs, out);
  const std::vector<std::string> order = {"dense3", "tanh2", "dense2", "tanh1", "dense1"};
  BOOST_REQUIRE_EQUAL(listener.nodes.size(), order.size());
  for (std::size_t i = 0; i < order.size(); ++i)
    BOOST_TEST(listener.nodes[i] == static_cast<const void*>(out.grads.find(order[i])), order[i]);
}

BOOST_AUTO_TEST_CASE(the_listener_is_not_passed_to_the_children) {
  Needs needs;
  RecordingListener listener;
  needs.listener = &listener;
  BOOST_TEST(needs.child("dense1", true).listener == nullptr);
}

BOOST_AUTO_TEST_CASE(a_step_with_a_group_of_one_equals_a_step_alone) {
  const Network net = three_layers();
  Dataset<double> data;
  data.x = arma::mat(4, 64, arma::fill::randn);
  data.shape = Shape{4};
  data.labels = arma::randi<arma::uvec>(64, arma::distr_param(0, 2));
  const Optimizer opt = adam({.learning_rate = 0.01});
  OneRank group;
  TrainState<double> alone = init_train_state<double>(net, data.shape, opt, he_normal(), 3);
  TrainState<double> grouped = alone;
  const BatchPlan plan = batches(data.size(), 16, false);
  for (std::size_t b = 0; b < plan.size(); ++b) {
    train_step(net, alone, opt, SoftmaxCrossEntropy(), data, plan, plan[b]);
    train_step(net, grouped, opt, SoftmaxCrossEntropy(), data, plan, plan[b],
               {.group = &group, .bucket_bytes = 100});
  }
  // Scaled by the batch (16) into the sum and back by 1/16: exact in binary.
  BOOST_TEST(grouped.params.identical(alone.params));
  BOOST_TEST(group.values == 4 * (grouped.params.count() + OneRank::check_values));
  BOOST_TEST(group.starts > 4 * 2);  // several buckets per step
}

BOOST_AUTO_TEST_CASE(buckets_start_while_backward_still_runs_the_first_layers) {
  const Network net = three_layers();
  Dataset<float> data;
  data.x = arma::fmat(4, 32, arma::fill::randn);
  data.shape = Shape{4};
  data.labels = arma::randi<arma::uvec>(32, arma::distr_param(0, 2));
  const Optimizer opt = sgd({.learning_rate = 0.1});
  TrainStateF run = init_train_state<float>(net, data.shape, opt, he_normal(), 3);
  const BatchPlan plan = batches(data.size(), 32, false);
  OneRank group;
  const StepOptions options{.group = &group, .bucket_bytes = 8 * sizeof(float)};
  train_step(net, run, opt, SoftmaxCrossEntropy(), data, plan, plan[0], options);
  // The next step's dense1 gradient is written into the same buffer: mark it, and look at
  // it whenever a bucket's sum starts.
  arma::fmat& dense1 = run.workspace.backward.grads.at("dense1/weight").value();
  dense1.fill(12345.0f);
  std::size_t before_dense1 = 0, after_dense1 = 0;
  group.on_start = [&] { (dense1[0] == 12345.0f ? before_dense1 : after_dense1)++; };
  train_step(net, run, opt, SoftmaxCrossEntropy(), data, plan, plan[0], options);
  // dense3 (27 values) and dense2 (72) fill 12 buckets of 8 before dense1's backward runs.
  BOOST_TEST(before_dense1 == (27u + 72u) / 8u);
  BOOST_TEST(after_dense1 > 0u);
}

BOOST_AUTO_TEST_SUITE_END()
