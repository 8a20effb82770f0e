// Specification of the random stream: the same seed gives the same draws, and the draws
// have the moments of their distributions.
#include <boost/test/unit_test.hpp>

#include <cmath>

#include "layercache/layercache.hpp"

using namespace layercache;

BOOST_AUTO_TEST_CASE(same_seed_gives_the_same_random_stream) {
  Rng a(42), b(42), c(43);
  for (int i = 0; i < 100; ++i) BOOST_TEST(a.next() == b.next());
  BOOST_TEST(Rng(42).next() != c.next());
}

BOOST_AUTO_TEST_CASE(rng_distributions_have_the_right_moments) {
  Rng rng(5);
  const int n = 200000;
  double sum = 0, sum_sq = 0, usum = 0;
  for (int i = 0; i < n; ++i) {
    const double v = rng.normal();
    sum += v;
    sum_sq += v * v;
    usum += rng.uniform();
  }
  BOOST_TEST(std::abs(sum / n) < 0.01);
  BOOST_TEST(std::abs(sum_sq / n - 1.0) < 0.01);
  BOOST_TEST(std::abs(usum / n - 0.5) < 0.005);
  for (int i = 0; i < 1000; ++i) BOOST_TEST(rng.below(7) < 7u);
}
