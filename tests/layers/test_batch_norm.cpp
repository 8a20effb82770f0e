// Specification of BatchNorm: the batch's statistics in training and the running ones in
// infer mode, by hand; the new state a training forward returns; per channel for images;
// gradients by hand; what it declares and rejects (the shared checks run on its rows in
// test_layers.cpp, in both modes).
#include <boost/test/unit_test.hpp>

#include "layercache/layercache.hpp"
#include "layercache/testing_boost.hpp"
#include "layer_test_support.hpp"

using namespace layercache;
using namespace layer_tests;

namespace {

Tree<double> tensors(const char* first, arma::vec a, const char* second, arma::vec b) {
  Tree<double> t;
  t.add(first, Tree<double>(arma::mat(a)));
  t.add(second, Tree<double>(arma::mat(b)));
  return t;
}

// γ = (2, 1), β = (1, 0).
Tree<double> two_features() { return tensors("scale", {2, 1}, "shift", {1, 0}); }

// Feature 0: (1, 2, 3, 6), mean 3, Σ(x − μ)² = 4 + 1 + 0 + 9 = 14, σ² = 3.5; feature 1:
// (8, 3, 5, 4), mean 5, Σ(x − μ)² = 9 + 4 + 0 + 1 = 14 too. With eps = 0.5, √(σ² + eps) = 2.
const arma::mat batch{{1, 2, 3, 6}, {8, 3, 5, 4}};
const BatchNorm layer(2, {.momentum = 0.1, .eps = 0.5});

Context training(Rng& rng) { return Context{Mode::train, &rng, false, nullptr, nullptr}; }
const Context in_infer_mode{Mode::infer, nullptr, false, nullptr, nullptr};

}  // namespace

BOOST_AUTO_TEST_CASE(batch_norm_trains_on_the_batch_statistics) {
  Rng rng(1);
  const auto out = layer.forward(two_features(), batch, Shape{2}, training(rng),
                                 layer.init_state<double>(Shape{2}));
  // x̂ = (x − μ) / 2: (−1, −0.5, 0, 1.5) and (1.5, −1, 0, −0.5); y = γ x̂ + β.
  const arma::mat expected{{-1, 0, 1, 4}, {1.5, -1, 0, -0.5}};
  BOOST_TEST(arma::approx_equal(out.y(), expected, "absdiff", 1e-12));
}

BOOST_AUTO_TEST_CASE(batch_norm_returns_running_statistics_moved_by_the_momentum) {
  Rng rng(1);
  const auto out = layer.forward(two_features(), batch, Shape{2}, training(rng),
                                 layer.init_state<double>(Shape{2}));
  // From (0, 1): mean 0.9·0 + 0.1·(3, 5); variance 0.9·1 + 0.1·14/3 (the unbiased variance).
  BOOST_TEST(arma::approx_equal(out.state.at("running_mean").value(), arma::mat(arma::vec{0.3, 0.5}),
                                "absdiff", 1e-12));
  const double v = 0.9 + 0.1 * 14.0 / 3.0;
  BOOST_TEST(arma::approx_equal(out.state.at("running_variance").value(),
                                arma::mat(arma::vec{v, v}), "absdiff", 1e-12));
}

BOOST_AUTO_TEST_CASE(batch_norm_state_starts_at_mean_zero_and_variance_one) {
  const Tree<double> state = layer.init_state<double>(Shape{2});
  BOOST_TEST(state.paths() == (std::vector<std::string>{"running_mean", "running_variance"}));
  BOOST_TEST(arma::all(arma::vectorise(state.at("running_mean").value()) == 0));
  BOOST_TEST(arma::all(arma::vectorise(state.at("running_variance").value()) == 1));
  Rng rng(3);
  const Tree<double> params = layer.init<double>(Shape{2}, xavier_normal(), rng);
  BOOST_TEST(arma::all(arma::vectorise(params.at("scale").value()) == 1));
  BOOST_TEST(arma::all(arma::vectorise(params.at("shift").value()) == 0));
}

BOOST_AUTO_TEST_CASE(batch_norm_in_infer_mode_uses_the_running_statistics) {
  // running mean (1, −1), variance (3.5, 0.5): √(σ² + 0.5) = (2, 1).
  const Tree<double> state =
      tensors("running_mean", {1, -1}, "running_variance", {3.5, 0.5});
  const arma::mat x{{3, 1}, {0, -1}};
  // x̂ = ((3 − 1)/2, (0 + 1)/1) = (1, 1) and ((1 − 1)/2, (−1 + 1)/1) = (0, 0).
  const arma::mat expected{{3, 1}, {1, 0}};
  const auto out = layer.forward(two_features(), x, Shape{2}, in_infer_mode, state);
  BOOST_TEST(arma::approx_equal(out.y(), expected, "absdiff", 1e-12));
  BOOST_TEST(arma::approx_equal(layer.infer(two_features(), x, Shape{2}, state), expected,
                                "absdiff", 1e-12));
  BOOST_TEST(out.state.n_tensors() == 0u);  // infer mode returns no new state
  // Backward through the running statistics: dx = γ dy / √(σ² + eps), dγ = Σ dy x̂, dβ = Σ dy.
  const arma::mat dy{{1, 2}, {3, 4}};
  const auto back = layer.backward(two_features(), *out.cache, dy);
  BOOST_TEST(arma::approx_equal(back.dx, arma::mat{{1, 2}, {3, 4}}, "absdiff", 1e-12));
  BOOST_TEST(arma::approx_equal(back.grads.at("scale").value(), arma::mat(arma::vec{1, 3}),
                                "absdiff", 1e-12));
  BOOST_TEST(arma::approx_equal(back.grads.at("shift").value(), arma::mat(arma::vec{3, 7}),
                                "absdiff", 1e-12));
}

BOOST_AUTO_TEST_CASE(batch_norm_backward_in_training_goes_through_the_batch_statistics) {
  Rng rng(1);
  const auto out = layer.forward(two_features(), batch, Shape{2}, training(rng),
                                 layer.init_state<double>(Shape{2}));
  const arma::mat dy{{1, 0, 0, 0}, {0, 0, 0, 0}};
  const auto back = layer.backward(two_features(), *out.cache, dy);
  // Feature 0: γ/√(σ²+eps) = 1, mean dy = 0.25, mean dy x̂ = −0.25:
  // dx = dy − 0.25 + 0.25 x̂ = (0.5, −0.375, −0.25, 0.125); they sum to zero.
  const arma::mat expected{{0.5, -0.375, -0.25, 0.125}, {0, 0, 0, 0}};
  BOOST_TEST(arma::approx_equal(back.dx, expected, "absdiff", 1e-12));
  BOOST_TEST(arma::approx_equal(back.grads.at("scale").value(), arma::mat(arma::vec{-1, 0}),
                                "absdiff", 1e-12));
  BOOST_TEST(arma::approx_equal(back.grads.at("shift").value(), arma::mat(arma::vec{1, 0}),
                                "absdiff", 1e-12));
}

BOOST_AUTO_TEST_CASE(batch_norm_of_images_normalizes_each_channel_over_batch_and_pixels) {
  const BatchNorm images(2, {.eps = 4});
  // Samples (2, 1, 2): channel 0 holds (1, 3) and (5, 7): mean 4, σ² = 5, √(σ² + 4) = 3;
  // channel 1 holds 2 everywhere: σ² = 0, so y is its shift.
  const arma::mat x{{1, 5}, {3, 7}, {2, 2}, {2, 2}};
  Rng rng(1);
  const auto out = images.forward(tensors("scale", {1, 1}, "shift", {0, 0.5}), x, Shape{2, 1, 2},
                                  training(rng), images.init_state<double>(Shape{2, 1, 2}));
  const arma::mat expected{{-1, 1.0 / 3}, {-1.0 / 3, 1}, {0.5, 0.5}, {0.5, 0.5}};
  BOOST_TEST(arma::approx_equal(out.y(), expected, "absdiff", 1e-12));
  BOOST_TEST(arma::approx_equal(out.state.at("running_mean").value(),
                                arma::mat(arma::vec{0.4, 0.2}), "absdiff", 1e-12));
}

BOOST_AUTO_TEST_CASE(batch_norm_state_errors_say_state) {
  Rng rng(1);
  const std::string missing = error_of<ConfigError>(
      [&] { layer.forward(two_features(), batch, Shape{2}, training(rng)); });
  BOOST_TEST(contains(missing, "missing state 'running_mean'"), missing);
  BOOST_TEST(contains(missing, "init_state"), missing);
  BOOST_TEST(!contains(missing, "parameter"), missing);
  const Tree<double> short_state = tensors("running_mean", {0, 0, 0}, "running_variance", {1, 1});
  const std::string shape = shape_error_of(
      [&] { layer.forward(two_features(), batch, Shape{2}, training(rng), short_state); });
  BOOST_TEST(contains(shape, "running_mean"), shape);
  BOOST_TEST(contains(shape, "state"), shape);
}

BOOST_AUTO_TEST_CASE(batch_norm_rejects_other_channel_counts_and_bad_options) {
  const std::string e = shape_error_of([] { BatchNorm(3).output_shape(Shape{2, 4, 4}); });
  BOOST_TEST(contains(e, "expected input (3) or (3, height, width), got (2, 4, 4)"), e);
  BOOST_CHECK_THROW(BatchNorm(0), ConfigError);
  BOOST_CHECK_THROW(BatchNorm(2, {.momentum = 0}), ConfigError);
  BOOST_CHECK_THROW(BatchNorm(2, {.eps = 0}), ConfigError);
}

BOOST_AUTO_TEST_CASE(batch_norm_passes_the_shared_checks_in_both_modes) {
  for (const Mode mode : {Mode::train, Mode::infer}) {
    testing::GradCheckOptions o;
    o.mode = mode;
    o.batch = 4;
    LAYERCACHE_CHECK_GRADIENTS(BatchNorm(3), (Shape{3, 2, 2}), o);
    LAYERCACHE_CHECK_CACHE_CONTRACT(BatchNorm(3), Shape{3}, o);
  }
}
