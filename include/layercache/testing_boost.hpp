// Boost.Test adapter for layercache/testing.hpp: one macro per check, failing the current
// test case with the check's report. Include after <boost/test/unit_test.hpp>.
#pragma once

#include <boost/test/unit_test.hpp>

#include "layercache/testing.hpp"

/// Fails the test case when the layer's gradients disagree with finite differences.
#define LAYERCACHE_CHECK_GRADIENTS(layer, input_shape, ...)                                   \
  do {                                                                                        \
    const auto lc_result_ =                                                                   \
        ::layercache::testing::check_gradients((layer), (input_shape), ##__VA_ARGS__);        \
    BOOST_TEST(lc_result_.passed, lc_result_.report());                                       \
  } while (0)

/// Fails the test case when the layer breaks the cache contract.
#define LAYERCACHE_CHECK_CACHE_CONTRACT(layer, input_shape, ...)                              \
  do {                                                                                        \
    const auto lc_result_ =                                                                   \
        ::layercache::testing::check_cache_contract((layer), (input_shape), ##__VA_ARGS__);   \
    BOOST_TEST(lc_result_.passed, lc_result_.report());                                       \
  } while (0)

/// Fails the test case when float and double forwards disagree beyond the tolerance.
#define LAYERCACHE_CHECK_FLOAT_MATCHES_DOUBLE(layer, input_shape, ...)                        \
  do {                                                                                        \
    const auto lc_result_ = ::layercache::testing::check_float_matches_double(                \
        (layer), (input_shape), ##__VA_ARGS__);                                               \
    BOOST_TEST(lc_result_.passed, lc_result_.report());                                       \
  } while (0)
