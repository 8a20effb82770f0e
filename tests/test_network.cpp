// Specification of networks: nesting, paths and the buffers their caches report.
#include <boost/test/unit_test.hpp>

#include <sstream>
#include <string>
#include <vector>

#include "layercache/layercache.hpp"
#include "layercache/testing_boost.hpp"

using namespace layercache;

BOOST_AUTO_TEST_CASE(three_level_network_passes_gradient_check) {
  Network inner{Dense(3, 4), Dense(4, 3, {.bias = false})};
  Network middle{named("inner", inner), Dense(3, 3)};
  Network outer{Dense(5, 3), named("middle", middle), Dense(3, 2)};
  auto r = testing::check_gradients(outer, Shape{5});
  BOOST_TEST(r.passed, r.report());
  BOOST_TEST_MESSAGE(r.report());
  Rng rng(1);
  auto params = outer.init(Shape{5}, xavier_uniform(), rng);
  BOOST_TEST(params.contains("middle/inner/dense2/weight"));
  BOOST_TEST_MESSAGE(outer.summary(Shape{5}));
}

BOOST_AUTO_TEST_CASE(caches_report_the_data_of_their_buffers) {
  // for_each_buffer must name the tensor's data (what backward reads), not the matrix object:
  // the contract check snapshots those bytes, and bytes() counts them.
  const Network net{Dense(4, 8), ReLU(), Dense(8, 2)};
  Rng rng(1);
  const auto params = net.init(Shape{4}, he_normal(), rng);
  const arma::fmat x(4, 5, arma::fill::randn);
  const auto out = net.forward(params, x);
  std::vector<const void*> seen;
  out.cache->for_each_buffer([&](const void* p, std::size_t) { seen.push_back(p); });
  const auto& steps = static_cast<const NetworkCache<float>&>(*out.cache).steps;
  BOOST_TEST(seen.size() == 3u);  // dense1 input, relu1 output, dense2 input (= relu1 output)
  BOOST_TEST(seen[0] == static_cast<const void*>(out.input->memptr()));
  BOOST_TEST(seen[1] == static_cast<const void*>(steps[1].output->memptr()));
  BOOST_TEST(seen[2] == seen[1]);
  BOOST_TEST(out.cache->bytes() == (4 + 8) * 5 * sizeof(float));
}

namespace {
// y = x, counting its backward calls into a counter the test owns.
struct CountsBackward : LayerImpl<CountsBackward> {
  static constexpr const char* kind_name = "counts_backward";
  explicit CountsBackward(int* calls) : calls(calls) {}
  Shape output_shape(const Shape& input) const override { return input; }
  template <class T>
  void forward_t(const Tensors<T>&, const ConstBuffer<T>& x, arma::Mat<T>& y, NoCache<T>&,
                 const LayerCall<T>&) const {
    y = *x;
  }
  template <class T>
  void backward_t(const Tensors<T>&, const NoCache<T>&, const arma::Mat<T>& dy,
                  Gradients<T>& grads) const {
    ++*calls;
    if (grads.dx()) *grads.dx() = dy;
  }
  int* calls;
};
}  // namespace

BOOST_AUTO_TEST_CASE(layers_before_the_first_with_a_gradient_to_compute_run_no_backward) {
  int calls = 0;
  const Network net{named("encoder", Network{Dense(4, 5), CountsBackward(&calls), Dense(5, 5),
                                             CountsBackward(&calls)}),
                    named("head", Network{Dense(5, 2)})};
  Rng rng(1);
  const auto params = net.init(Shape{4}, he_normal(), rng);
  const arma::fmat x(4, 3, arma::fill::randn);
  const arma::fmat dy(2, 3, arma::fill::randn);
  const auto fwd = net.forward(params, x);
  const auto full = net.backward(params, *fwd.cache, dy);
  calls = 0;

  const FrozenSet encoder = freeze(params, {"encoder"});
  Needs needs;
  needs.input = false;
  needs.frozen = &encoder;
  const auto head_only = net.backward(params, *fwd.cache, dy, needs);
  BOOST_TEST(calls == 0);  // nothing in the frozen encoder needs dx
  BOOST_TEST(head_only.dx.is_empty());
  BOOST_TEST(head_only.grads.at("encoder/dense1/weight").value().is_empty());
  BOOST_TEST(head_only.grads.at("encoder/dense2/weight").value().is_empty());
  BOOST_TEST(head_only.grads.at("head").identical(full.grads.at("head")));

  const FrozenSet first_dense = freeze(params, {"encoder/dense1"});
  needs.frozen = &first_dense;
  const auto after_first = net.backward(params, *fwd.cache, dy, needs);
  BOOST_TEST(calls == 1);  // the layer after encoder/dense2 passes its dy on, the one before not
  BOOST_TEST(after_first.grads.at("encoder/dense2").identical(full.grads.at("encoder/dense2")));

  calls = 0;
  needs.input = true;  // the caller wants dx: every layer runs
  const auto with_dx = net.backward(params, *fwd.cache, dy, needs);
  BOOST_TEST(calls == 2);
  BOOST_TEST(with_dx.dx.n_rows == 4u);
}

// ---- summary and Armadillo expressions ------------------------------------------------------

BOOST_AUTO_TEST_CASE(summary_shows_nesting_params_and_cache_bytes_per_node) {
  // Dense(4, 8): 40 params; its cache holds its input, 4 floats × 5 samples = 80 bytes. The
  // residual block keeps its inner dense's input and tanh's output (2 × 8 × 5 floats), and the
  // last dense the residual's output (160 bytes): 80 + 320 + 160 for the step.
  const Network net{Dense(4, 8), Residual(Network{Dense(8, 8), Tanh()}), Dense(8, 2)};
  const std::string table = summary(net, Shape{4}, {.batch = 5});
  BOOST_TEST_MESSAGE(table);
  std::istringstream lines(table);
  std::vector<std::string> rows;
  for (std::string line; std::getline(lines, line);) rows.push_back(line);
  BOOST_TEST_REQUIRE(rows.size() == 10u);
  auto words = [](const std::string& line) {
    std::istringstream in(line);
    std::vector<std::string> out;
    for (std::string w; in >> w;) out.push_back(w);
    return out;
  };
  using V = std::vector<std::string>;
  BOOST_TEST((words(rows[1]) == V{"(root)", "network", "(2)", "130", "560"}));
  BOOST_TEST((words(rows[2]) == V{"dense1", "dense", "(8)", "40", "80"}));
  BOOST_TEST((words(rows[3]) == V{"residual1", "residual", "(8)", "72", "320"}));
  BOOST_TEST(rows[4].rfind("    inner ", 0) == 0u, rows[4]);  // nested two levels deep
  BOOST_TEST((words(rows[5]) == V{"dense1", "dense", "(8)", "72", "160"}));
  BOOST_TEST((words(rows[7]) == V{"dense2", "dense", "(2)", "18", "160"}));
  BOOST_TEST((words(rows[6]) == V{"tanh1", "tanh", "(8)", "0", "160"}));
  BOOST_TEST((words(rows[8]) == V{"total", "parameters:", "130"}));
  BOOST_TEST((words(rows[9]) == V{"cache", "bytes", "of", "one", "training", "step:", "560"}));
  // Without a forward the cache column is left out.
  const std::string plain = net.summary(Shape{4}, {.batch = 0});
  BOOST_TEST(plain.find("cache") == std::string::npos, plain);
}

BOOST_AUTO_TEST_CASE(summary_shows_a_shared_graph_node_once_with_its_params) {
  const Graph g({.inputs = {{"left", Shape{3}}, {"right", Shape{3}}},
                 .nodes = {{.name = "embed_left", .layer = Dense(3, 4), .inputs = {"left"}},
                           {.name = "embed_right", .inputs = {"right"}, .shares = "embed_left"},
                           {.name = "both", .inputs = {"embed_left", "embed_right"}}},
                 .outputs = {"both"}});
  const std::string table = summary(g, Shape{6});
  BOOST_TEST_MESSAGE(table);
  BOOST_TEST(table.find("embed_right") != std::string::npos, table);
  BOOST_TEST(table.find("dense (shared)") != std::string::npos, table);
  BOOST_TEST(table.find("total parameters: 16\n") != std::string::npos, table);
}

BOOST_AUTO_TEST_CASE(forward_infer_and_predict_take_armadillo_expressions) {
  const Network net{Dense(3, 4), Tanh(), Dense(4, 2)};
  Rng rng(3);
  const TreeF params = net.init(Shape{3}, xavier_uniform(), rng);
  const TreeF state = net.init_state(Shape{3});
  arma::fmat x(3, 10, arma::fill::randn);
  const arma::fmat head = x.cols(0, 3);
  const arma::fmat want = net.infer(params, head);
  BOOST_TEST(arma::approx_equal(net.infer(params, x.cols(0, 3)), want, "absdiff", 0.0f));
  BOOST_TEST(arma::approx_equal(net.forward(params, x.cols(0, 3)).y(), want, "absdiff", 0.0f));
  BOOST_TEST(arma::approx_equal(predict(net, params, state, x.cols(0, 3), Shape{3}), want,
                                "absdiff", 0.0f));
  BOOST_TEST(arma::approx_equal(predict(net, params, state, 2.0f * x.cols(0, 3), Shape{3}),
                                arma::fmat(net.infer(params, arma::fmat(2.0f * head))), "absdiff",
                                0.0f));
}
