// Specification of Parallel: concatenation of branch outputs (of image channels too) and the
// shapes add and multiply need (the shared checks run on its rows in test_layers.cpp).
#include <boost/test/unit_test.hpp>

#include "layer_test_support.hpp"
#include "layercache/layercache.hpp"

using namespace layercache;
using namespace layer_tests;

BOOST_AUTO_TEST_CASE(parallel_concat_stacks_the_branch_outputs_sample_by_sample) {
  const Parallel both{Dense(3, 2), Dense(3, 4)};
  Rng rng(1);
  const auto params = both.init<double>(Shape{3}, he_normal(), rng);
  const arma::mat x = random_batch(3, 5, 4);
  const arma::mat y = both.forward(params, x).y();
  BOOST_TEST(y.n_rows == 6u);
  BOOST_TEST(arma::approx_equal(y.rows(0, 1), Dense(3, 2).infer(params.at("dense1"), x),
                                "absdiff", 0.0));
  BOOST_TEST(arma::approx_equal(y.rows(2, 5), Dense(3, 4).infer(params.at("dense2"), x),
                                "absdiff", 0.0));
  BOOST_TEST(arma::approx_equal(both.infer(params, x), y, "absdiff", 0.0));
}

BOOST_AUTO_TEST_CASE(parallel_concat_of_images_stacks_channels) {
  const Parallel both{Conv2D({.in_channels = 1, .out_channels = 2, .padding = 1}),
                      Conv2D({.in_channels = 1, .out_channels = 3, .kernel = 1})};
  BOOST_TEST((both.output_shape(Shape{1, 6, 5}) == Shape{5, 6, 5}));
  BOOST_CHECK_EXCEPTION(
      (Parallel{Conv2D({.in_channels = 1, .out_channels = 2}),
                Conv2D({.in_channels = 1, .out_channels = 3, .kernel = 1})}
           .output_shape(Shape{1, 6, 5})),
      ShapeError, [](const ShapeError& e) {
        return contains(e.what(), "cannot concat conv2d1 (2, 4, 3) with conv2d2 (3, 6, 5)");
      });
}

BOOST_AUTO_TEST_CASE(parallel_add_and_multiply_need_equal_shapes) {
  BOOST_CHECK_EXCEPTION((Parallel({Dense(3, 2), Dense(3, 4)}, Merge::add).output_shape(Shape{3})),
                        ShapeError, [](const ShapeError& e) {
                          return contains(e.what(), "cannot add dense1 (2) with dense2 (4)");
                        });
  const Parallel gate({Dense(3, 2), Network{Dense(3, 2), Sigmoid()}}, Merge::multiply);
  Rng rng(2);
  const auto params = gate.init<double>(Shape{3}, he_normal(), rng);
  const arma::mat x = random_batch(3, 4, 5);
  const arma::mat expected = Dense(3, 2).infer(params.at("dense1"), x) %
                             Network{Dense(3, 2), Sigmoid()}.infer(params.at("network1"), x);
  BOOST_TEST(arma::abs(gate.forward(params, x).y() - expected).max() < 1e-15);
}
