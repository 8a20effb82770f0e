// Specification of LayerNorm: each sample normalized over all its values, by hand, with its
// gradients; images normalized over channels, height and width together (the shared checks
// run on its rows in test_layers.cpp).
#include <boost/test/unit_test.hpp>

#include "layercache/layercache.hpp"
#include "layercache/testing_boost.hpp"
#include "layer_test_support.hpp"

using namespace layercache;
using namespace layer_tests;

namespace {

Tree<double> affine(arma::vec scale, arma::vec shift) {
  Tree<double> t;
  t.add("scale", Tree<double>(arma::mat(scale)));
  t.add("shift", Tree<double>(arma::mat(shift)));
  return t;
}

}  // namespace

BOOST_AUTO_TEST_CASE(layer_norm_normalizes_each_sample_by_its_own_statistics) {
  const LayerNorm layer({.eps = 0.5});
  // Sample 0: (1, 2, 3, 6), mean 3, σ² = 3.5, √(σ² + 0.5) = 2; sample 1 is sample 0 + 10
  // (the same x̂: the statistics are per sample, not per batch).
  const arma::mat x{{1, 11}, {2, 12}, {3, 13}, {6, 16}};
  const auto params = affine({1, 2, 1, 1}, {0, 0, 1, 0});
  const auto out = layer.forward(params, x);
  // x̂ = (−1, −0.5, 0, 1.5); y = γ ⊙ x̂ + β.
  const arma::mat expected{{-1, -1}, {-1, -1}, {1, 1}, {1.5, 1.5}};
  BOOST_TEST(arma::approx_equal(out.y(), expected, "absdiff", 1e-12));
  BOOST_TEST(arma::approx_equal(layer.infer(params, x), expected, "absdiff", 1e-12));
}

BOOST_AUTO_TEST_CASE(layer_norm_backward_by_hand) {
  const LayerNorm layer({.eps = 0.5});
  const arma::mat x(arma::vec{1, 2, 3, 6});
  const auto params = affine({1, 1, 1, 1}, {0, 0, 0, 0});
  const auto out = layer.forward(params, x);
  const auto back = layer.backward(params, *out.cache, arma::mat(arma::vec{1, 0, 0, 0}));
  // g = dy, mean g = 0.25, mean g x̂ = −0.25, √(σ² + eps) = 2:
  // dx = (g − 0.25 + 0.25 x̂) / 2 = (0.5, −0.375, −0.25, 0.125) / 2.
  const arma::mat expected = arma::mat(arma::vec{0.5, -0.375, -0.25, 0.125} / 2);
  BOOST_TEST(arma::approx_equal(back.dx, expected, "absdiff", 1e-12));
  BOOST_TEST(arma::approx_equal(back.grads.at("scale").value(),
                                arma::mat(arma::vec{-1, 0, 0, 0}), "absdiff", 1e-12));
  BOOST_TEST(arma::approx_equal(back.grads.at("shift").value(),
                                arma::mat(arma::vec{1, 0, 0, 0}), "absdiff", 1e-12));
}

BOOST_AUTO_TEST_CASE(layer_norm_of_images_spans_channels_height_and_width) {
  const LayerNorm layer;
  Rng rng(5);
  const Shape image{2, 3, 2};
  const Tree<double> params = layer.init<double>(image, xavier_normal(), rng);
  BOOST_TEST(params.at("scale").value().n_rows == 12u);  // one γ per value of the sample
  const arma::mat x = random_matrix(12, 3, rng);
  const arma::mat y = layer.forward(params, x, image).y();
  for (arma::uword j = 0; j < 3; ++j) {
    BOOST_TEST(std::abs(arma::mean(y.col(j))) < 1e-12);
    BOOST_TEST(std::abs(arma::mean(arma::square(y.col(j))) - 1) < 1e-3);  // eps shrinks it a little
  }
}

BOOST_AUTO_TEST_CASE(layer_norm_rejects_a_single_value_and_a_bad_eps) {
  const std::string e = shape_error_of([] { LayerNorm().output_shape(Shape{1}); });
  BOOST_TEST(contains(e, "at least 2 values"), e);
  BOOST_CHECK_THROW(LayerNorm({.eps = -1}), ConfigError);
}
