// Specification of Softmax and LogSoftmax: probabilities per column and stability.
#include <boost/test/unit_test.hpp>

#include "layercache/layercache.hpp"
#include "layercache/testing_boost.hpp"
#include "layer_test_support.hpp"

using namespace layercache;
using namespace layer_tests;

BOOST_AUTO_TEST_CASE(softmax_columns_are_probabilities) {
  const arma::mat y = Softmax().forward(Tree<double>{}, random_batch(7, 5, 2)).y();
  BOOST_TEST(y.min() > 0.0);
  for (arma::uword j = 0; j < y.n_cols; ++j)
    BOOST_TEST(arma::accu(y.col(j)) == 1.0, boost::test_tools::tolerance(1e-14));
}

BOOST_AUTO_TEST_CASE(softmax_treats_each_column_on_its_own_and_ignores_a_shift) {
  arma::mat x = random_batch(4, 3, 3);
  const arma::mat y = Softmax().forward(Tree<double>{}, x).y();
  x.col(1) += 100.0;  // shifting one sample changes nothing anywhere
  const arma::mat shifted = Softmax().forward(Tree<double>{}, x).y();
  BOOST_TEST(arma::approx_equal(y, shifted, "absdiff", 1e-14));
}

BOOST_AUTO_TEST_CASE(softmax_of_huge_logits_is_finite) {
  const arma::vec y = apply(Softmax(), arma::vec{1000.0, 0.0});
  BOOST_TEST(y(0) == 1.0);
  BOOST_TEST(y(1) == 0.0);
  const arma::vec tie = apply(Softmax(), arma::vec{1000.0, 1000.0});
  BOOST_TEST(tie(0) == 0.5);
  BOOST_TEST(tie(1) == 0.5);
  const arma::fmat yf = Softmax().forward(Tree<float>{}, arma::fmat(arma::fvec{1000.0f, 0.0f})).y();
  BOOST_TEST(yf.is_finite());
}

BOOST_AUTO_TEST_CASE(log_softmax_is_stable_for_huge_logits) {
  const arma::vec y = apply(LogSoftmax(), arma::vec{1000.0, 0.0});
  BOOST_TEST(y(0) == 0.0);
  BOOST_TEST(y(1) == -1000.0);  // not −inf: the log of a softmax that rounds to 0 is never taken
  const arma::fmat logits(arma::fvec{1000.0f, 0.0f});
  const arma::fmat yf = LogSoftmax().forward(Tree<float>{}, logits).y();
  BOOST_TEST(yf(1, 0) == -1000.0f);
}

BOOST_AUTO_TEST_CASE(log_softmax_is_the_log_of_softmax) {
  const arma::mat x = random_batch(6, 4, 4);
  const arma::mat log_p = LogSoftmax().forward(Tree<double>{}, x).y();
  const arma::mat p = Softmax().forward(Tree<double>{}, x).y();
  BOOST_TEST(arma::approx_equal(arma::exp(log_p), p, "absdiff", 1e-15));
}
