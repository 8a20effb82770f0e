// Specification of RecurrentLayer, what SimpleRNN, LSTM and GRU share (recurrent.hpp): the
// option checks, the output shapes each option gives, and the lengths the cache records for
// backward. Each cell's own math is in test_simple_rnn.cpp, test_lstm.cpp and test_gru.cpp.
#include <boost/test/unit_test.hpp>

#include "layercache/layercache.hpp"
#include "layer_test_support.hpp"

using namespace layercache;
using namespace layer_tests;

BOOST_AUTO_TEST_CASE(recurrent_layers_refuse_zero_sizes) {
  BOOST_CHECK_THROW(SimpleRNN({.n_in = 0, .n_hidden = 4}), ConfigError);
  BOOST_CHECK_THROW(LSTM({.n_in = 3, .n_hidden = 0}), ConfigError);
  BOOST_CHECK_THROW(GRU({.n_in = 0, .n_hidden = 0}), ConfigError);
}

// The last step's hidden state, every step's, and the final state (h, then c for an LSTM)
// after the output; an initial state is read before the steps.
BOOST_AUTO_TEST_CASE(recurrent_output_shapes_follow_the_options) {
  const RecurrentOptions last{.n_in = 3, .n_hidden = 4};
  RecurrentOptions every = last;
  every.return_sequences = true;
  RecurrentOptions stateful = every;
  stateful.initial_state = true;
  stateful.return_state = true;
  BOOST_TEST(SimpleRNN(last).output_shape(Shape{5, 3}).str() == (Shape{4}.str()));
  BOOST_TEST(GRU(every).output_shape(Shape{5, 3}).str() == (Shape{5, 4}.str()));
  BOOST_TEST(SimpleRNN(stateful).output_shape(Shape{4 + 5 * 3}).str() == (Shape{5 * 4 + 4}.str()));
  BOOST_TEST(GRU(stateful).output_shape(Shape{4 + 5 * 3}).str() == (Shape{5 * 4 + 4}.str()));
  BOOST_TEST(LSTM(stateful).output_shape(Shape{8 + 5 * 3}).str() == (Shape{5 * 4 + 8}.str()));
}

BOOST_AUTO_TEST_CASE(recurrent_layers_refuse_steps_of_another_width) {
  BOOST_CHECK_THROW(LSTM({.n_in = 3, .n_hidden = 4}).output_shape(Shape{5, 2}), ShapeError);
  BOOST_CHECK_THROW(GRU({.n_in = 3, .n_hidden = 4}).output_shape(Shape{7}), ShapeError);
}

// Backward needs each sample's real steps: the cache keeps the call's lengths, all T steps
// when the context gives none.
BOOST_AUTO_TEST_CASE(recurrent_cache_records_the_lengths_of_the_call) {
  const SimpleRNN rnn({.n_in = 2, .n_hidden = 3});
  Rng rng(3);
  const Tree<double> params = rnn.init<double>(Shape{4, 2}, xavier_uniform(), rng);
  const arma::mat x(8, 3, arma::fill::randn);
  const arma::uvec lengths{4, 1, 0};
  Context ctx;
  ctx.lengths = &lengths;
  const auto padded = rnn.forward(params, x, Shape{4, 2}, ctx);
  const auto& cache = dynamic_cast<const RecurrentCache<double>&>(*padded.cache);
  BOOST_TEST(cache.lengths == (std::vector<std::size_t>{4, 1, 0}), boost::test_tools::per_element());
  const auto whole = rnn.forward(params, x, Shape{4, 2});
  const auto& full = dynamic_cast<const RecurrentCache<double>&>(*whole.cache);
  BOOST_TEST(full.lengths == (std::vector<std::size_t>{4, 4, 4}), boost::test_tools::per_element());
}
