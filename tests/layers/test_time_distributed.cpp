// Specification of TimeDistributed: the inner layer on every step, read in place (the
// shared checks run on its rows in test_layers.cpp).
#include <boost/test/unit_test.hpp>

#include "layercache/layercache.hpp"
#include "layer_test_support.hpp"

using namespace layercache;
using namespace layer_tests;

BOOST_AUTO_TEST_CASE(time_distributed_applies_the_inner_layer_to_every_step) {
  const TimeDistributed each(Dense(3, 2));
  Rng rng(4);
  const auto params = each.init<double>(Shape{4, 3}, xavier_normal(), rng);
  BOOST_TEST(params.paths() == (std::vector<std::string>{"dense1/weight", "dense1/bias"}));
  const arma::mat x = random_matrix(12, 2, rng);
  const auto out = each.forward(params, x, Shape{4, 3});
  BOOST_TEST((out.shape == Shape{4, 2}));
  const Dense& dense = static_cast<const Dense&>(Dense(3, 2));
  for (std::size_t b = 0; b < 2; ++b)
    for (std::size_t t = 0; t < 4; ++t) {
      const arma::mat step = x.submat(t * 3, b, t * 3 + 2, b);
      const arma::mat expected = dense.infer(params.at("dense1"), step);
      BOOST_TEST(max_relative_difference(out.y().submat(t * 2, b, t * 2 + 1, b), expected) < 1e-14);
    }
  BOOST_TEST(max_relative_difference(each.infer(params, x, Shape{4, 3}), out.y()) == 0.0);
}

BOOST_AUTO_TEST_CASE(time_distributed_needs_a_sequence_and_names_its_child_in_errors) {
  const TimeDistributed each(Dense(3, 2));
  BOOST_TEST(contains(shape_error_of([&] { each.output_shape(Shape{12}); }), "expected a sequence (T, F)"));
  const std::string e = shape_error_of([&] { each.output_shape(Shape{4, 5}); });
  BOOST_TEST(contains(e, "dense1: expected input (3), got (5)"), e);
}
