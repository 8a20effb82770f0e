// Specification of Reshape: aliasing of the input buffer and its errors (the shared checks run
// on its rows in test_layers.cpp).
#include <boost/test/unit_test.hpp>

#include "layercache/layercache.hpp"
#include "layercache/testing_boost.hpp"
#include "layer_test_support.hpp"

using namespace layercache;
using namespace layer_tests;

BOOST_AUTO_TEST_CASE(reshape_aliases_its_input_and_names_the_sizes_in_errors) {
  const Reshape reshape(Shape{1, 4, 6});
  const Shape in{24};
  Rng rng(4);
  const auto out = reshape.forward(Tree<double>{}, random_matrix(24, 3, rng), in);
  BOOST_TEST(out.y().memptr() == out.input->memptr());
  BOOST_TEST((out.shape == Shape{1, 4, 6}));
  const std::string e = shape_error_of([&] { reshape.output_shape(Shape{25}); });
  BOOST_TEST(contains(e, "expected input of 24 values to reshape into (1, 4, 6), got (25)"), e);
}

// ---- A small CNN --------------------------------------------------------------------------
