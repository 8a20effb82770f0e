// Specification of Identity: it returns its input, aliases it and keeps no bytes.
#include <boost/test/unit_test.hpp>

#include "layercache/layercache.hpp"
#include "layercache/testing_boost.hpp"
#include "layer_test_support.hpp"

using namespace layercache;
using namespace layer_tests;

BOOST_AUTO_TEST_CASE(identity_returns_its_input) {
  const arma::mat x = random_batch(3, 4, 1);
  BOOST_TEST(arma::approx_equal(Identity().forward(Tree<double>{}, x).y(), x, "absdiff", 0.0));
  BOOST_TEST(arma::approx_equal(Identity().infer(Tree<double>{}, x), x, "absdiff", 0.0));
}

BOOST_AUTO_TEST_CASE(identity_aliases_its_input_and_keeps_no_bytes) {
  const auto x = std::make_shared<const arma::mat>(random_batch(3, 2, 11));
  ForwardResult<double> out;
  Identity().forward_into(Tree<double>{}, Tree<double>{}, x, Shape{3}, {}, out);
  BOOST_TEST(out.output.get() == x.get());
  BOOST_TEST(out.cache->bytes() == 0u);
  const arma::mat dy = random_batch(3, 2, 12);
  const auto grads = Identity().backward(Tree<double>{}, *out.cache, dy);
  BOOST_TEST(arma::approx_equal(grads.dx, dy, "absdiff", 0.0));
}
