// Specification of the checked size arithmetic (layercache/sizes.hpp) and of Shape's use of it.
#include <boost/test/unit_test.hpp>

#include <string>

#include "layercache/layercache.hpp"
#include "layers/layer_test_support.hpp"

using namespace layercache;

using layer_tests::contains;
using layer_tests::error_of;

BOOST_AUTO_TEST_CASE(checked_arithmetic_returns_results_up_to_max_size) {
  BOOST_TEST(checked_mul(6, 7, "a × b") == 42u);
  BOOST_TEST(checked_add(40, 2, "a + b") == 42u);
  BOOST_TEST(checked_product({2, 3, 7}, "c × h × w") == 42u);
  BOOST_TEST(checked_product({}, "nothing") == 1u);
  BOOST_TEST(checked_add(max_size - 1, 1, "a + b") == max_size);
  BOOST_TEST(checked_bytes(max_size / 8, 8, "bytes") == max_size / 8 * 8);
}

BOOST_AUTO_TEST_CASE(checked_arithmetic_names_the_operands_past_max_size) {
  const std::string wrapped = error_of<ConfigError>(
      [] { checked_mul(std::size_t(1) << 32, std::size_t(1) << 32, "kernel × kernel"); });
  BOOST_TEST(contains(wrapped, "kernel × kernel = 4294967296 × 4294967296 exceeds the largest size"),
             wrapped);
  // past ptrdiff_t's range without wrapping a size_t: refused too (signed index arithmetic)
  const std::string past = error_of<ShapeError>(
      [] { checked_add<ShapeError>(max_size, 1, "height + 2 × padding"); });
  BOOST_TEST(contains(past, "height + 2 × padding = 9223372036854775807 + 1"), past);
  BOOST_CHECK_THROW(checked_mul<DataError>(max_size / 2 + 1, 2, "labels"), DataError);
  BOOST_CHECK_THROW(checked_product({1ULL << 21, 1ULL << 21, 1ULL << 21}, "values"), ConfigError);
}

BOOST_AUTO_TEST_CASE(shape_refuses_dimensions_whose_product_exceeds_max_size) {
  const std::string e =
      error_of<ShapeError>([] { Shape{std::size_t(1) << 32, std::size_t(1) << 32, 2}; });
  BOOST_TEST(contains(e, "(4294967296, 4294967296, 2)"), e);
  BOOST_TEST(Shape({std::size_t(1) << 31, std::size_t(1) << 31}).size() == std::size_t(1) << 62);
}

BOOST_AUTO_TEST_CASE(physical_memory_is_known_on_this_machine) {
  BOOST_TEST(physical_memory_bytes() > (std::size_t(1) << 20));
}
