// Specification of Flatten: aliasing of the input buffer, shape errors (the shared checks run
// on its row in test_layers.cpp).
#include <boost/test/unit_test.hpp>

#include "layercache/layercache.hpp"
#include "layercache/testing_boost.hpp"
#include "layer_test_support.hpp"

using namespace layercache;
using namespace layer_tests;

BOOST_AUTO_TEST_CASE(flatten_output_is_the_input_buffer) {
  const Flatten flatten;
  Rng rng(4);
  const auto out = flatten.forward(Tree<double>{}, random_matrix(24, 3, rng), Shape{2, 3, 4});
  BOOST_TEST(out.y().memptr() == out.input->memptr());
  BOOST_TEST(out.cache->bytes() == 0u);
  BOOST_TEST((out.shape == Shape{24}));
  BOOST_TEST((flatten.output_shape(Shape{2, 3, 4}) == Shape{24}));
}

BOOST_AUTO_TEST_CASE(flatten_in_a_network_shares_the_previous_output) {
  const Shape in{1, 6, 6};
  const Network net{Conv2D({.in_channels = 1, .out_channels = 2}), Flatten(), Dense(32, 3)};
  Rng rng(1);
  const auto params = net.init<double>(in, xavier_normal(), rng);
  const auto out = net.forward(params, random_matrix(in.size(), 2, rng), in);
  const auto& steps = dynamic_cast<const NetworkCache<double>&>(*out.cache).steps;
  BOOST_TEST(steps[1].output.get() == steps[0].output.get());
  BOOST_TEST(steps[1].y().memptr() == steps[0].y().memptr());
}

BOOST_AUTO_TEST_CASE(flatten_rejects_rows_that_contradict_the_shape) {
  const Flatten flatten;
  const std::string e = shape_error_of(
      [&] { flatten.forward(Tree<double>{}, arma::mat(25, 2, arma::fill::zeros), Shape{2, 3, 4}); });
  BOOST_TEST(contains(e, "(2, 3, 4)"), e);
  BOOST_TEST(contains(e, "25"), e);
}
