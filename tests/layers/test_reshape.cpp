// Specification of Reshape: shared checks and aliasing of the input buffer.
#include <boost/test/unit_test.hpp>

#include "layercache/layercache.hpp"
#include "layercache/testing_boost.hpp"
#include "layer_test_support.hpp"

using namespace layercache;
using namespace layer_tests;

BOOST_AUTO_TEST_CASE(reshape_passes_shared_checks_and_aliases) {
  const Reshape reshape(Shape{1, 4, 6});
  const Shape in{24};
  const auto r = testing::check_gradients(reshape, in);
  BOOST_TEST(r.passed, r.report());
  const auto contract = testing::check_cache_contract(reshape, in);
  BOOST_TEST(contract.passed, contract.report());
  LAYERCACHE_CHECK_FLOAT_MATCHES_DOUBLE(reshape, in, 1e-5);
  Rng rng(4);
  const auto out = reshape.forward(Tree<double>{}, random_matrix(24, 3, rng), in);
  BOOST_TEST(out.y().memptr() == out.input->memptr());
  BOOST_TEST((out.shape == Shape{1, 4, 6}));
  const std::string e = shape_error_of([&] { reshape.output_shape(Shape{25}); });
  BOOST_TEST(contains(e, "expected input of 24 values to reshape into (1, 4, 6), got (25)"), e);
}

// ---- A small CNN --------------------------------------------------------------------------
