// Specification of SimpleRNN: two steps by hand, padded batches, states in and out (the
// shared checks run on its rows in test_layers.cpp).
#include <boost/test/unit_test.hpp>

#include <cmath>

#include "layercache/layercache.hpp"
#include "layer_test_support.hpp"
#include "sequence_support.hpp"

using namespace layercache;
using namespace layer_tests;

BOOST_AUTO_TEST_CASE(simple_rnn_steps_are_tanh_of_w_x_plus_u_h_plus_b) {
  const SimpleRNN rnn({.n_in = 1, .n_hidden = 1, .return_sequences = true});
  Tree<double> p;
  p.add("weight_input", Tree<double>(arma::mat(1, 1, arma::fill::value(0.5))));
  p.add("weight_hidden", Tree<double>(arma::mat(1, 1, arma::fill::value(-0.8))));
  p.add("bias", Tree<double>(arma::mat(1, 1, arma::fill::value(0.1))));
  const arma::mat y = rnn.forward(p, arma::mat(arma::vec{1.0, 2.0})).y();
  const double h1 = std::tanh(0.5 * 1.0 + 0.1), h2 = std::tanh(0.5 * 2.0 - 0.8 * h1 + 0.1);
  BOOST_TEST(arma::approx_equal(y, arma::mat(arma::vec{h1, h2}), "absdiff", 1e-15));
}

BOOST_AUTO_TEST_CASE(simple_rnn_padded_batch_equals_the_sequences_run_one_by_one) {
  check_padded_batch_equals_one_by_one(SimpleRNN({.n_in = 3, .n_hidden = 2, .return_sequences = true}),
                                       3, 6, arma::uvec{6, 3, 1}, 2, true);
  check_padded_batch_equals_one_by_one(SimpleRNN({.n_in = 3, .n_hidden = 2}), 3, 6,
                                       arma::uvec{0, 2, 6}, 2, false);
}

BOOST_AUTO_TEST_CASE(simple_rnn_starts_from_the_given_state) {
  const SimpleRNN rnn({.n_in = 1, .n_hidden = 1, .initial_state = true, .return_state = true});
  Tree<double> p;
  p.add("weight_input", Tree<double>(arma::mat(1, 1, arma::fill::value(0.5))));
  p.add("weight_hidden", Tree<double>(arma::mat(1, 1, arma::fill::value(-0.8))));
  p.add("bias", Tree<double>(arma::mat(1, 1, arma::fill::value(0.0))));
  const arma::mat y = rnn.forward(p, arma::mat(arma::vec{0.3, 1.0})).y();  // [h₀; x₁]
  const double h = std::tanh(0.5 - 0.8 * 0.3);
  BOOST_TEST(arma::approx_equal(y, arma::mat(arma::vec{h, h}), "absdiff", 1e-15));
}
