// Specification of SequenceSoftmaxCrossEntropy: the per-step cross-entropy averaged over the
// real steps, padding steps skipped.
#include <boost/test/unit_test.hpp>

#include <cmath>

#include "layercache/layercache.hpp"

using namespace layercache;

namespace {

// The plain softmax cross-entropy of one step's logits against a label.
double step_loss(const arma::vec& logits, arma::uword label) {
  return std::log(arma::accu(arma::exp(logits))) - logits[label];
}

}  // namespace

BOOST_AUTO_TEST_CASE(sequence_cross_entropy_is_the_mean_over_real_steps) {
  const arma::uword pad = 99;
  const SequenceSoftmaxCrossEntropy loss({.n_classes = 2, .padding = pad});
  // Two samples of 3 steps, 2 classes; sample 1 has one real step.
  const arma::mat y{{0.5, 2.0}, {-1.0, 0.0}, {1.5, 7.0}, {0.2, -3.0}, {0.0, 4.0}, {3.0, 5.0}};
  const arma::uvec labels{1, 0, 1, 0, pad, pad};
  arma::mat grad;
  const double v = loss.value_and_grad(y, labels, grad);
  const double expected = (step_loss(arma::vec{0.5, -1.0}, 1) + step_loss(arma::vec{1.5, 0.2}, 0) +
                           step_loss(arma::vec{0.0, 3.0}, 1) + step_loss(arma::vec{2.0, 0.0}, 0)) / 4;
  BOOST_TEST(v == expected, boost::test_tools::tolerance(1e-14));
  // Padding steps get no gradient, whatever their logits.
  BOOST_TEST(arma::abs(grad.submat(2, 1, 5, 1)).max() == 0.0);
  // A real step: (softmax − onehot) / 4.
  const arma::vec p = arma::exp(arma::vec{2.0, 0.0}) / arma::accu(arma::exp(arma::vec{2.0, 0.0}));
  BOOST_TEST(std::abs(grad(0, 1) - (p[0] - 1) / 4) < 1e-15);
  BOOST_TEST(std::abs(grad(1, 1) - p[1] / 4) < 1e-15);
}

BOOST_AUTO_TEST_CASE(sequence_cross_entropy_gradient_matches_finite_differences) {
  const SequenceSoftmaxCrossEntropy loss({.n_classes = 3});
  const arma::uword pad = loss.options().padding;
  arma::mat y = arma::reshape(arma::linspace<arma::vec>(-2, 3, 18), 9, 2);
  const arma::uvec labels{2, 0, pad, 1, pad, pad};
  arma::mat grad;
  loss.value_and_grad(y, labels, grad);
  for (arma::uword i = 0; i < y.n_elem; ++i) {
    const double saved = y[i], h = 1e-6;
    y[i] = saved + h;
    const double up = loss.value(y, labels);
    y[i] = saved - h;
    const double down = loss.value(y, labels);
    y[i] = saved;
    BOOST_TEST(std::abs((up - down) / (2 * h) - grad[i]) < 1e-8, "entry " << i);
  }
}

BOOST_AUTO_TEST_CASE(sequence_cross_entropy_refuses_bad_labels_and_shapes) {
  const SequenceSoftmaxCrossEntropy loss({.n_classes = 2});
  const arma::mat y(4, 2, arma::fill::zeros);  // 2 steps × 2 samples
  BOOST_CHECK_THROW(loss.value(y, arma::uvec{0, 1, 1}), ShapeError);
  BOOST_CHECK_THROW(loss.value(y, arma::uvec{0, 2, 1, 1}), DataError);
  BOOST_CHECK_THROW(loss.value(arma::mat(3, 2, arma::fill::zeros), arma::uvec{0, 1}), ShapeError);
  BOOST_CHECK_THROW(loss.value(y, arma::mat(4, 2)), ConfigError);
  BOOST_CHECK_THROW(SequenceSoftmaxCrossEntropy({.n_classes = 0}), ConfigError);
  // Only padding: nothing to learn from, value 0.
  BOOST_TEST(loss.value(y, arma::uvec(4, arma::fill::value(loss.options().padding))) == 0.0);
}
