// Specification of Embedding: a column of the table per id, a gradient only in the columns
// of the ids used, and ids out of range refused (the shared checks run on its rows in
// test_layers.cpp).
#include <boost/test/unit_test.hpp>

#include "layercache/layercache.hpp"
#include "layer_test_support.hpp"

using namespace layercache;
using namespace layer_tests;

namespace {

// The table E (2 × 4): column k is the vector of id k.
Tree<double> table() {
  Tree<double> p;
  p.add("weight", Tree<double>(arma::mat{{0, 10, 20, 30}, {1, 11, 21, 31}}));
  return p;
}

}  // namespace

BOOST_AUTO_TEST_CASE(embedding_gives_the_column_of_each_id_at_each_step) {
  const Embedding embedding(4, 2);
  const arma::mat ids{{3, 0}, {1, 1}, {3, 2}};  // two samples of 3 steps
  const auto out = embedding.forward(table(), ids);
  BOOST_TEST((out.shape == Shape{3, 2}));
  const arma::mat expected{{30, 0}, {31, 1}, {10, 10}, {11, 11}, {30, 20}, {31, 21}};
  BOOST_TEST(arma::approx_equal(out.y(), expected, "absdiff", 0.0));
  BOOST_TEST(arma::approx_equal(embedding.infer(table(), ids), expected, "absdiff", 0.0));
}

BOOST_AUTO_TEST_CASE(embedding_gradient_touches_only_the_ids_used) {
  const Embedding embedding(4, 2);
  const arma::mat ids{{3, 0}, {1, 1}, {3, 1}};
  const auto out = embedding.forward(table(), ids);
  const arma::mat dy = arma::reshape(arma::linspace<arma::vec>(1, 12, 12), 6, 2);
  const auto back = embedding.backward(table(), *out.cache, dy);
  const arma::mat& d = back.grads.at("weight").value();
  // id 3 at steps 0 and 2 of sample 0: (1, 2) + (5, 6); id 1: (3, 4) + (9, 10) + (11, 12);
  // id 0: (7, 8); id 2 unused.
  const arma::mat expected{{7, 23, 0, 6}, {8, 26, 0, 8}};
  BOOST_TEST(arma::approx_equal(d, expected, "absdiff", 0.0));
  BOOST_TEST(arma::abs(back.dx).max() == 0.0);  // ids have no gradient
}

BOOST_AUTO_TEST_CASE(embedding_refuses_ids_out_of_range_or_not_whole) {
  const Embedding embedding(4, 2);
  const std::string too_big =
      error_of<DataError>([&] { embedding.forward(table(), arma::mat{{1, 2}, {4, 0}}); });
  BOOST_TEST(contains(too_big, "sample 0, step 1: expected an id in [0, 4), got 4"), too_big);
  BOOST_CHECK_THROW(embedding.forward(table(), arma::mat(1, 1, arma::fill::value(1.5))), DataError);
  BOOST_CHECK_THROW(embedding.infer(table(), arma::mat(1, 1, arma::fill::value(-1.0))), DataError);
  BOOST_CHECK_THROW(Embedding(0, 3), ConfigError);
}
