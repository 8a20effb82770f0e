// Specification of Bidirectional: the backward direction reads each sample's real steps in
// reverse, and padded batches match sequences run one by one (the shared checks run on its
// rows in test_layers.cpp).
#include <boost/test/unit_test.hpp>

#include "layercache/layercache.hpp"
#include "layer_test_support.hpp"
#include "sequence_support.hpp"

using namespace layercache;
using namespace layer_tests;

BOOST_AUTO_TEST_CASE(bidirectional_backward_direction_reads_the_reversed_sequence) {
  const LSTM lstm({.n_in = 2, .n_hidden = 3, .return_sequences = true});
  const Bidirectional both(lstm);
  Rng rng(6);
  const auto params = both.init<double>(Shape{4, 2}, xavier_normal(), rng);
  BOOST_TEST(params.at("forward").paths() == params.at("backward").paths());
  const arma::mat x = random_matrix(8, 2, rng);
  const arma::mat y = both.forward(params, x, Shape{4, 2}).y();  // (4 · 6 × 2)
  // The backward direction alone, on the steps in reverse order, put back in time order.
  arma::mat reversed(8, 2);
  for (std::size_t t = 0; t < 4; ++t) reversed.rows(2 * t, 2 * t + 1) = x.rows(2 * (3 - t), 2 * (3 - t) + 1);
  const arma::mat behind = lstm.forward(params.at("backward"), reversed, Shape{4, 2}).y();
  const arma::mat forward = lstm.forward(params.at("forward"), x, Shape{4, 2}).y();
  for (std::size_t t = 0; t < 4; ++t) {
    BOOST_TEST(max_relative_difference(y.rows(6 * t, 6 * t + 2), forward.rows(3 * t, 3 * t + 2)) == 0.0);
    BOOST_TEST(max_relative_difference(y.rows(6 * t + 3, 6 * t + 5), behind.rows(3 * (3 - t), 3 * (3 - t) + 2)) == 0.0);
  }
}

BOOST_AUTO_TEST_CASE(bidirectional_padded_batch_equals_the_sequences_run_one_by_one) {
  check_padded_batch_equals_one_by_one(
      Bidirectional(GRU({.n_in = 2, .n_hidden = 3, .return_sequences = true})), 2, 5,
      arma::uvec{5, 3, 0, 1}, 6, true);
  check_padded_batch_equals_one_by_one(Bidirectional(LSTM({.n_in = 2, .n_hidden = 3})), 2, 5,
                                       arma::uvec{2, 5, 4}, 6, false);
}

BOOST_AUTO_TEST_CASE(bidirectional_refuses_layers_with_state_in_or_out) {
  BOOST_CHECK_THROW(Bidirectional(LSTM({.n_in = 2, .n_hidden = 3, .return_state = true})),
                    ConfigError);
  BOOST_CHECK_THROW(Bidirectional(GRU({.n_in = 2, .n_hidden = 3, .initial_state = true})),
                    ConfigError);
  BOOST_CHECK_THROW(Bidirectional(LSTM({.n_in = 2, .n_hidden = 3})).output_shape(Shape{8}),
                    ShapeError);
}
