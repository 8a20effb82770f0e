// Specification of GRU: one step by hand, padded batches, states in and out (the shared
// checks run on its rows in test_layers.cpp).
#include <boost/test/unit_test.hpp>

#include <cmath>

#include "layercache/layercache.hpp"
#include "layer_test_support.hpp"
#include "sequence_support.hpp"

using namespace layercache;
using namespace layer_tests;

BOOST_AUTO_TEST_CASE(gru_one_step_follows_the_gate_equations) {
  const GRU gru({.n_in = 1, .n_hidden = 1, .initial_state = true});
  Tree<double> p;
  p.add("weight_input", Tree<double>(arma::mat(arma::vec{0.5, -0.3, 0.8})));
  p.add("weight_hidden", Tree<double>(arma::mat(arma::vec{0.1, 0.4, -0.6})));
  p.add("bias", Tree<double>(arma::mat(arma::vec{0.05, 1.0, -0.1})));
  p.add("bias_hidden", Tree<double>(arma::mat(arma::vec{0.2, -0.5, 0.3})));
  const double h0 = 0.7, x = 1.5;
  const auto s = [](double a) { return 1 / (1 + std::exp(-a)); };
  const double r = s(0.5 * x + 0.05 + 0.1 * h0 + 0.2), z = s(-0.3 * x + 1.0 + 0.4 * h0 - 0.5);
  const double n = std::tanh(0.8 * x - 0.1 + r * (-0.6 * h0 + 0.3));
  const double h = (1 - z) * n + z * h0;
  BOOST_TEST(gru.forward(p, arma::mat(arma::vec{h0, x})).y()(0, 0) == h, boost::test_tools::tolerance(1e-14));
}

BOOST_AUTO_TEST_CASE(gru_padded_batch_equals_the_sequences_run_one_by_one) {
  check_padded_batch_equals_one_by_one(GRU({.n_in = 2, .n_hidden = 3, .return_sequences = true}), 2,
                                       4, arma::uvec{4, 1, 0, 3}, 3, true);
  check_padded_batch_equals_one_by_one(GRU({.n_in = 2, .n_hidden = 3}), 2, 4, arma::uvec{2, 4}, 3,
                                       false);
}

BOOST_AUTO_TEST_CASE(gru_has_a_hidden_bias_and_a_state_of_h_alone) {
  const GRU gru({.n_in = 4, .n_hidden = 2, .initial_state = true, .return_state = true});
  const auto specs = gru.param_specs(Shape{6});
  BOOST_TEST(specs.size() == 4u);
  BOOST_TEST(specs[3].name == "bias_hidden");
  BOOST_TEST(specs[0].rows == 6u);
  // [h₀ (2); 3 steps of 4] → [h_T (2); h_T (2)]
  BOOST_TEST((gru.output_shape(Shape{2 + 12}) == Shape{4}));
}
