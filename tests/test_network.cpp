// Specification of networks: nesting, paths, shape checks and error paths.
#include <boost/test/unit_test.hpp>

#include "layercache/layercache.hpp"
#include "layercache/testing_boost.hpp"

using namespace layercache;

BOOST_AUTO_TEST_CASE(dense_passes_gradient_check) {
  LAYERCACHE_CHECK_GRADIENTS(Dense(4, 3), Shape{4});
  auto r = testing::check_gradients(Dense(4, 3), Shape{4});
  BOOST_TEST_MESSAGE(r.report());
}

BOOST_AUTO_TEST_CASE(dense_keeps_cache_contract) {
  LAYERCACHE_CHECK_CACHE_CONTRACT(Dense(4, 3), Shape{4});
  LAYERCACHE_CHECK_FLOAT_MATCHES_DOUBLE(Dense(4, 3), Shape{4});
}

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
