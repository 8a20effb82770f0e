// Specification of Dropout and Dropout2D: the statistics of the masks they draw, inverted
// scaling, the mask kept for backward, reproducible draws from the caller's stream, and the
// identity in infer mode (the shared checks run on their rows in test_layers.cpp).
#include <boost/test/unit_test.hpp>

#include "layercache/layercache.hpp"
#include "layercache/testing_boost.hpp"
#include "layer_test_support.hpp"

using namespace layercache;
using namespace layer_tests;

namespace {

Context training(Rng& rng) { return Context{Mode::train, &rng, false, nullptr, nullptr}; }

}  // namespace

BOOST_AUTO_TEST_CASE(dropout_drops_the_rate_and_scales_the_rest_by_its_complement) {
  const Dropout layer({.rate = 0.3});
  const arma::mat x(1000, 100, arma::fill::ones);
  Rng rng(11);
  const arma::mat y = layer.forward(Tree<double>{}, x, Shape{1000}, training(rng)).y();
  const double dropped = double(arma::accu(y == 0)) / double(y.n_elem);
  // 100 000 Bernoulli(0.3) draws: standard deviation 0.0015; 0.01 is over six of them.
  BOOST_TEST(std::abs(dropped - 0.3) < 0.01, "dropped fraction " << dropped);
  BOOST_TEST(arma::all(arma::vectorise((y == 0) + (arma::abs(y - 1 / 0.7) < 1e-12)) == 1));
  BOOST_TEST(std::abs(arma::mean(arma::vectorise(y)) - 1) < 0.015);  // inverted: E[y] = x
}

BOOST_AUTO_TEST_CASE(dropout_backward_applies_the_mask_kept_in_the_cache) {
  const Dropout layer({.rate = 0.5});
  Rng rng(2);
  const arma::mat x = random_matrix(6, 5, rng);
  const auto out = layer.forward(Tree<double>{}, x, Shape{6}, training(rng));
  const arma::mat dy = random_matrix(6, 5, rng);
  const arma::mat dx = layer.backward(Tree<double>{}, *out.cache, dy).dx;
  // The mask is y / x; dx = dy ⊙ mask.
  BOOST_TEST(arma::approx_equal(dx, arma::mat(dy % (out.y() / x)), "absdiff", 1e-12));
  BOOST_TEST(out.cache->bytes() == 6 * 5 * sizeof(double));
}

BOOST_AUTO_TEST_CASE(dropout_draws_the_same_mask_from_the_same_seed) {
  const Dropout layer;
  const arma::mat x(8, 4, arma::fill::ones);
  Rng a(5), b(5), c(6);
  const arma::mat ya = layer.forward(Tree<double>{}, x, Shape{8}, training(a)).y();
  const arma::mat yb = layer.forward(Tree<double>{}, x, Shape{8}, training(b)).y();
  const arma::mat yc = layer.forward(Tree<double>{}, x, Shape{8}, training(c)).y();
  BOOST_TEST(arma::approx_equal(ya, yb, "absdiff", 0));
  BOOST_TEST(!arma::approx_equal(ya, yc, "absdiff", 0));
  BOOST_TEST((a.state() == b.state()));
}

BOOST_AUTO_TEST_CASE(dropout_is_the_identity_in_infer_mode_and_at_rate_zero) {
  Rng rng(3);
  const arma::mat x = random_matrix(5, 4, rng);
  const Context infer_mode{Mode::infer, nullptr, false, nullptr, nullptr};
  BOOST_TEST(arma::approx_equal(Dropout().forward(Tree<double>{}, x, Shape{5}, infer_mode).y(), x,
                                "absdiff", 0));
  BOOST_TEST(arma::approx_equal(Dropout().infer(Tree<double>{}, x), x, "absdiff", 0));
  const Rng before = rng;
  BOOST_TEST(arma::approx_equal(
      Dropout({.rate = 0}).forward(Tree<double>{}, x, Shape{5}, training(rng)).y(), x,
      "absdiff", 0));
  BOOST_TEST((rng.state() == before.state()));  // nothing drawn
}

BOOST_AUTO_TEST_CASE(dropout_in_training_needs_an_rng_and_a_rate_below_one) {
  const std::string e = error_of<ConfigError>(
      [] { Dropout().forward(Tree<double>{}, arma::mat(3, 2, arma::fill::ones)); });
  BOOST_TEST(contains(e, "Context::rng"), e);
  BOOST_CHECK_THROW(Dropout({.rate = 1}), ConfigError);
  BOOST_CHECK_THROW(Dropout2D({.rate = -0.1}), ConfigError);
}

BOOST_AUTO_TEST_CASE(dropout2d_drops_whole_channels_at_the_rate) {
  const Dropout2D layer({.rate = 0.25});
  const Shape image{50, 3, 2};  // 50 channels of 6 pixels
  const arma::mat x(image.size(), 400, arma::fill::ones);
  Rng rng(8);
  const arma::mat y = layer.forward(Tree<double>{}, x, image, training(rng)).y();
  std::size_t dropped = 0;
  bool whole = true;
  for (arma::uword j = 0; j < y.n_cols; ++j)
    for (arma::uword c = 0; c < 50; ++c) {
      const arma::vec channel = y.col(j).subvec(c * 6, c * 6 + 5);
      const bool zero = arma::all(channel == 0);
      whole = whole && (zero || arma::all(arma::abs(channel - 1 / 0.75) < 1e-12));
      dropped += zero;
    }
  BOOST_TEST(whole, "a channel was partly dropped, or kept without the scaling 1 / (1 − rate)");
  // 20 000 channel draws: standard deviation 0.003; 0.015 is five of them.
  BOOST_TEST(std::abs(double(dropped) / 20000 - 0.25) < 0.015);
  const auto out = layer.forward(Tree<double>{}, x, image, training(rng));
  const arma::mat dx = layer.backward(Tree<double>{}, *out.cache, x).dx;
  BOOST_TEST(arma::approx_equal(dx, out.y(), "absdiff", 0));  // dy = 1: dx is the mask
  BOOST_TEST(out.cache->bytes() == 50 * 400 * sizeof(double));  // one entry per channel
}

BOOST_AUTO_TEST_CASE(dropout2d_takes_images_only) {
  const std::string e = shape_error_of([] { Dropout2D().output_shape(Shape{12}); });
  BOOST_TEST(contains(e, "expected input (channels, height, width), got (12)"), e);
}

BOOST_AUTO_TEST_CASE(dropouts_pass_the_shared_checks_in_both_modes) {
  for (const Mode mode : {Mode::train, Mode::infer}) {
    testing::GradCheckOptions o;
    o.mode = mode;
    LAYERCACHE_CHECK_GRADIENTS(Dropout(), Shape{6}, o);
    LAYERCACHE_CHECK_CACHE_CONTRACT(Dropout2D({.rate = 0.4}), (Shape{3, 2, 2}), o);
  }
}
