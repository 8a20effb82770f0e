// Specification of Residual: y = x + f(x), the projection on the skip path, and the error when
// the two paths differ in shape (the shared checks run on its rows in test_layers.cpp).
#include <boost/test/unit_test.hpp>

#include "layer_test_support.hpp"
#include "layercache/layercache.hpp"

using namespace layercache;
using namespace layer_tests;

BOOST_AUTO_TEST_CASE(residual_adds_its_input_to_the_inner_output) {
  const Network inner{Dense(3, 3), Tanh()};
  const Residual block(inner);
  Rng rng(1);
  const auto params = block.init<double>(Shape{3}, he_normal(), rng);
  BOOST_TEST(params.paths() == (std::vector<std::string>{"inner/dense1/weight",
                                                          "inner/dense1/bias"}));
  const arma::mat x = random_batch(3, 4, 2);
  const arma::mat expected = x + inner.infer(params.at("inner"), x);
  BOOST_TEST(arma::approx_equal(block.forward(params, x).y(), expected, "absdiff", 0.0));
  BOOST_TEST(arma::approx_equal(block.infer(params, x), expected, "absdiff", 0.0));
}

BOOST_AUTO_TEST_CASE(residual_with_a_projection_adds_the_projection_of_its_input) {
  const Residual block(Dense(3, 5), named("shortcut", Dense(3, 5, {.bias = false})));
  Rng rng(1);
  const auto params = block.init<double>(Shape{3}, he_normal(), rng);
  BOOST_TEST(params.contains("shortcut/weight"));
  const arma::mat x = random_batch(3, 4, 3);
  const arma::mat expected = params.at("inner/weight").value() * x +
                             arma::repmat(params.at("inner/bias").value(), 1, 4) +
                             params.at("shortcut/weight").value() * x;
  BOOST_TEST(arma::abs(block.forward(params, x).y() - expected).max() < 1e-12);
}

BOOST_AUTO_TEST_CASE(residual_whose_paths_differ_in_shape_says_to_add_a_projection) {
  const Residual block(Dense(3, 5));
  BOOST_CHECK_EXCEPTION(block.output_shape(Shape{3}), ShapeError, [](const ShapeError& e) {
    return contains(e.what(), "the inner path gives (5) but the skip path (3)") &&
           contains(e.what(), "projection");
  });
}
