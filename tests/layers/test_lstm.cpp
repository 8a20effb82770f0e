// Specification of LSTM: one step by hand, padded batches, states in and out, truncated
// backpropagation through time, and its errors (the shared checks run on its rows in
// test_layers.cpp).
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

#include "layercache/layercache.hpp"
#include "layercache/testing_boost.hpp"
#include "layer_test_support.hpp"
#include "sequence_support.hpp"

using namespace layercache;
using namespace layer_tests;

namespace {

double sigmoid(double a) { return 1 / (1 + std::exp(-a)); }

}  // namespace

BOOST_AUTO_TEST_CASE(lstm_one_step_follows_the_gate_equations) {
  // H = 1, n_in = 1: W = (wi, wf, wg, wo), U = (ui, uf, ug, uo), b = (bi, bf, bg, bo).
  const LSTM lstm({.n_in = 1, .n_hidden = 1, .initial_state = true, .return_state = true});
  Tree<double> p;
  p.add("weight_input", Tree<double>(arma::mat(arma::vec{0.5, -0.3, 0.8, 0.2})));
  p.add("weight_hidden", Tree<double>(arma::mat(arma::vec{0.1, 0.4, -0.6, 0.3})));
  p.add("bias", Tree<double>(arma::mat(arma::vec{0.05, 1.0, -0.1, 0.0})));
  const double h0 = 0.7, c0 = -0.4, x = 1.5;
  const arma::mat y = lstm.forward(p, arma::mat(arma::vec{h0, c0, x})).y();
  const double i = sigmoid(0.5 * x + 0.1 * h0 + 0.05), f = sigmoid(-0.3 * x + 0.4 * h0 + 1.0);
  const double g = std::tanh(0.8 * x - 0.6 * h0 - 0.1), o = sigmoid(0.2 * x + 0.3 * h0);
  const double c = f * c0 + i * g, h = o * std::tanh(c);
  // Output [y; h_T; c_T]: the last step's h, then the final state.
  BOOST_TEST(arma::approx_equal(y, arma::mat(arma::vec{h, h, c}), "absdiff", 1e-14));
}

// In float the gates are polynomial approximations (vectorized, src/layers/gate_math.hpp):
// they must match the exact gate equations across the whole range of pre-activations,
// saturated and infinite ones included, and let NaN through.
BOOST_AUTO_TEST_CASE(lstm_float_step_follows_the_gate_equations_at_any_pre_activation) {
  // H = 1, n_in = 1, W = (1, 1, 1, 1), U = 0, b = 0: every gate's pre-activation is x.
  const LSTM lstm({.n_in = 1, .n_hidden = 1, .initial_state = true, .return_state = true});
  Tree<float> p;
  p.add("weight_input", Tree<float>(arma::fmat(arma::fvec{1, 1, 1, 1})));
  p.add("weight_hidden", Tree<float>(arma::fmat(4, 1, arma::fill::zeros)));
  p.add("bias", Tree<float>(arma::fmat(4, 1, arma::fill::zeros)));
  std::vector<float> xs;
  for (double x = -120; x <= 120; x += 0.0625) xs.push_back(float(x));
  for (double x = -1; x <= 1; x += 1.0 / 1024) xs.push_back(float(x));  // near 0: tanh's polynomial
  for (const float x : {1e-30f, -1e-20f, 88.7f, -88.7f, 1e30f, -1e30f, INFINITY, -INFINITY})
    xs.push_back(x);
  arma::fmat input(3, xs.size());  // [h0; c0; x]
  for (std::size_t k = 0; k < xs.size(); ++k)
    input.col(k) = arma::fvec{0.5f, float(k % 7) - 3.0f, xs[k]};
  const arma::fmat y = lstm.forward(p, input).y();
  double worst = 0;
  for (std::size_t k = 0; k < xs.size(); ++k) {
    const double x = xs[k], c0 = input(1, k);
    const double s = sigmoid(x), c = s * c0 + s * std::tanh(x), h = s * std::tanh(c);
    worst = std::max({worst, std::abs(y(0, k) - h), std::abs(y(2, k) - c)});
  }
  BOOST_TEST(worst < 1e-6);
  const arma::fmat nan = lstm.forward(p, arma::fmat(arma::fvec{0.5f, 1.0f, NAN})).y();
  BOOST_TEST(std::isnan(nan(0, 0)));
  BOOST_TEST(std::isnan(nan(2, 0)));
}

BOOST_AUTO_TEST_CASE(lstm_reads_an_image_as_rows_of_pixels) {
  const LSTM lstm({.n_in = 28, .n_hidden = 8});
  BOOST_TEST((lstm.output_shape(Shape{1, 28, 28}) == Shape{8}));
  BOOST_TEST((LSTM({.n_in = 28, .n_hidden = 8, .return_sequences = true})
                 .output_shape(Shape{784}) == (Shape{28, 8})));
  BOOST_TEST((LSTM({.n_in = 3, .n_hidden = 2, .initial_state = true, .return_state = true})
                 .output_shape(Shape{4 + 5 * 3}) == Shape{2 + 4}));
}

BOOST_AUTO_TEST_CASE(lstm_padded_batch_equals_the_sequences_run_one_by_one) {
  check_padded_batch_equals_one_by_one(LSTM({.n_in = 3, .n_hidden = 4, .return_sequences = true}), 3,
                                       5, arma::uvec{5, 2, 0, 3}, 4, true);
  check_padded_batch_equals_one_by_one(LSTM({.n_in = 3, .n_hidden = 4}), 3, 5,
                                       arma::uvec{1, 5, 4}, 4, false);
}

// Truncated backpropagation through time: the final state of one chunk, handed to the next
// as its initial state, gives the outputs of one call over the whole sequence.
BOOST_AUTO_TEST_CASE(lstm_state_carried_across_chunks_equals_one_long_call) {
  const std::size_t n_in = 2, H = 3, batch = 2;
  const LSTM whole({.n_in = n_in, .n_hidden = H, .return_sequences = true});
  const LSTM chunk({.n_in = n_in, .n_hidden = H, .return_sequences = true, .initial_state = true,
                    .return_state = true});
  Rng rng(5);
  const auto params = whole.init<double>(Shape{6, n_in}, xavier_normal(), rng);
  const arma::mat x = random_matrix(6 * n_in, batch, rng);
  const arma::mat all = whole.forward(params, x).y();
  arma::mat state(2 * H, batch, arma::fill::zeros);
  for (std::size_t part = 0; part < 2; ++part) {
    const arma::mat input = arma::join_cols(state, x.rows(part * 3 * n_in, (part + 1) * 3 * n_in - 1));
    const arma::mat y = chunk.forward(params, input).y();
    BOOST_TEST(max_relative_difference(y.rows(0, 3 * H - 1), all.rows(part * 3 * H, (part + 1) * 3 * H - 1)) < 1e-13);
    state = y.rows(3 * H, 3 * H + 2 * H - 1);
  }
}

BOOST_AUTO_TEST_CASE(lstm_final_state_of_a_padded_sample_is_its_last_real_step) {
  const LSTM lstm({.n_in = 2, .n_hidden = 3, .return_sequences = true, .return_state = true});
  Rng rng(2);
  const auto params = lstm.init<double>(Shape{4, 2}, xavier_normal(), rng);
  const arma::mat x = random_matrix(8, 2, rng);
  const arma::uvec lengths{2, 4};
  Context ctx;
  ctx.lengths = &lengths;
  const arma::mat y = lstm.forward(params, x, Shape{4, 2}, ctx).y();
  BOOST_TEST(arma::approx_equal(y.submat(12, 0, 14, 0), y.submat(3, 0, 5, 0), "absdiff", 0.0));
  BOOST_TEST(arma::approx_equal(y.submat(12, 1, 14, 1), y.submat(9, 1, 11, 1), "absdiff", 0.0));
}

BOOST_AUTO_TEST_CASE(lstm_rejects_bad_lengths_sizes_and_shapes) {
  const LSTM lstm({.n_in = 2, .n_hidden = 3});
  Rng rng(2);
  const auto params = lstm.init<double>(Shape{4, 2}, xavier_normal(), rng);
  const arma::mat x(8, 2, arma::fill::zeros);
  const arma::uvec too_long{2, 5}, too_few{2};
  Context ctx;
  ctx.lengths = &too_long;
  const std::string e = error_of<DataError>([&] { lstm.forward(params, x, Shape{4, 2}, ctx); });
  BOOST_TEST(contains(e, "sample 1 has length 5, more than the 4 steps"), e);
  ctx.lengths = &too_few;
  BOOST_TEST(contains(shape_error_of([&] { lstm.forward(params, x, Shape{4, 2}, ctx); }),
                      "expected one length per sample (2)"));
  BOOST_TEST(contains(shape_error_of([&] { lstm.output_shape(Shape{7}); }),
                      "steps of 2 features"));
  BOOST_CHECK_THROW(LSTM({.n_in = 0, .n_hidden = 3}), ConfigError);
}

BOOST_AUTO_TEST_CASE(lstm_declares_four_gates_per_weight) {
  const auto specs = LSTM({.n_in = 5, .n_hidden = 3}).param_specs(Shape{2, 5});
  BOOST_TEST(specs.size() == 3u);
  BOOST_TEST(specs[0].name == "weight_input");
  BOOST_TEST(specs[0].rows == 12u);
  BOOST_TEST(specs[0].cols == 5u);
  BOOST_TEST(specs[1].rows == 12u);
  BOOST_TEST(specs[1].cols == 3u);
  BOOST_TEST((specs[2].role == Role::bias));
}
