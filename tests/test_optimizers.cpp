// Specification of the optimizers: gradient transforms, ready-made chains, schedules, clipping,
// frozen params, validation before any change, checkpointable state and allocation-free steps.
#define BOOST_TEST_MODULE optimizers
#include <boost/test/unit_test.hpp>

#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <ostream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "alloc_counter.hpp"
#include "support/temp_dir.hpp"
#include "layercache/layercache.hpp"
#include "layercache/optimizers.hpp"
#include "layercache/rng.hpp"

using namespace layercache;

namespace {

// ----- helpers -----------------------------------------------------------------------------

// A tree with one leaf "w" holding a column.
TreeD column_tree(std::initializer_list<double> values) {
  TreeD tree;
  tree.add("w", TreeD(arma::mat(arma::vec(std::vector<double>(values)))));
  return tree;
}

// A tree with one branch `branch` holding column_tree(values).
TreeD column_tree_under(const std::string& branch, std::initializer_list<double> values) {
  TreeD tree;
  tree.add(branch, column_tree(values));
  return tree;
}

// The gradients of the hand-computed cases: g1 at the first step, g2 at the second.
const std::initializer_list<double> w0 = {1.0, -2.0, 3.0};
const std::initializer_list<double> g1 = {0.5, -1.0, 2.0};
const std::initializer_list<double> g2 = {1.0, 0.5, -0.5};

// Runs two updates from w0 with gradients g1 then g2; returns w after each.
std::vector<arma::vec> two_steps(const Optimizer& optimizer) {
  TreeD params = column_tree(w0);
  OptStateD state = optimizer.init(params);
  std::vector<arma::vec> out;
  for (const auto& g : {g1, g2}) {
    optimizer.update(params, column_tree(g), state);
    out.push_back(arma::vec(params.at("w").value()));
  }
  return out;
}

void check_close(const arma::vec& got, std::initializer_list<double> expected) {
  BOOST_TEST_REQUIRE(got.n_elem == expected.size());
  std::size_t i = 0;
  for (double e : expected) {
    BOOST_TEST(got(i) == e, boost::test_tools::tolerance(1e-9));
    ++i;
  }
}

// Least squares: params {linear/weight (2 × 3), linear/bias (2 × 1)}, loss
// L = ||W X + b − Y||² / (2 n) on n = 40 samples of a known linear map. Convex in (W, b).
struct LeastSquares {
  arma::fmat x;  // (3 × 40)
  arma::fmat y;  // (2 × 40)

  LeastSquares() : x(3, 40), y(2, 40) {
    Rng rng(7);
    x.imbue([&] { return static_cast<float>(rng.normal()); });
    const arma::fmat w_true = {{1.0f, -2.0f, 0.5f}, {0.3f, 0.8f, -1.5f}};
    const arma::fvec b_true = {0.5f, -1.0f};
    y = w_true * x;
    y.each_col() += b_true;
  }
  TreeF init() const {
    TreeF linear;
    linear.add("weight", TreeF(arma::fmat(2, 3, arma::fill::zeros)));
    linear.add("bias", TreeF(arma::fmat(2, 1, arma::fill::zeros)));
    TreeF params;
    params.add("linear", std::move(linear));
    return params;
  }
  arma::fmat residual(const TreeF& p) const {
    arma::fmat r = p.at("linear/weight").value() * x - y;
    r.each_col() += arma::fvec(p.at("linear/bias").value());
    return r;
  }
  double loss(const TreeF& p) const {
    const arma::fmat r = residual(p);
    return arma::accu(arma::square(r)) / (2.0 * x.n_cols);
  }
  TreeF grads(const TreeF& p) const {
    const arma::fmat r = residual(p);
    TreeF linear;
    linear.add("weight", TreeF(arma::fmat(r * x.t() / static_cast<float>(x.n_cols))));
    linear.add("bias", TreeF(arma::fmat(arma::sum(r, 1) / static_cast<float>(x.n_cols))));
    TreeF g;
    g.add("linear", std::move(linear));
    return g;
  }
};

// Loss after `steps` updates divided by the initial loss.
double loss_ratio(const Optimizer& optimizer, int steps) {
  const LeastSquares problem;
  TreeF params = problem.init();
  OptStateF state = optimizer.init(params);
  const double initial = problem.loss(params);
  for (int i = 0; i < steps; ++i) optimizer.update(params, problem.grads(params), state);
  return problem.loss(params) / initial;
}

}  // namespace

// ===== ready-made optimizers decrease a convex loss ========================================

namespace {

// One row of the table: a ready-made optimizer with settings that suit the problem.
struct DescentCase {
  std::string name;  // shown in every failure message
  Optimizer optimizer;
};

std::ostream& operator<<(std::ostream& os, const DescentCase& c) { return os << c.name; }

std::vector<DescentCase> descent_table() {
  return {
      {"sgd", sgd({.learning_rate = 0.1})},
      {"momentum", momentum({.learning_rate = 0.05, .momentum = 0.9})},
      {"nesterov", nesterov({.learning_rate = 0.05, .momentum = 0.9})},
      {"adam", adam({.learning_rate = 0.05})},
      {"adamw", adamw({.learning_rate = 0.05, .weight_decay = 1e-3})},
      {"rmsprop", rmsprop({.learning_rate = 0.01})},
      {"adagrad", adagrad({.learning_rate = 0.5})},
  };
}

}  // namespace

BOOST_DATA_TEST_CASE(ready_made_optimizer_decreases_least_squares_loss,
                     boost::unit_test::data::make(descent_table()), row) {
  const double ratio = loss_ratio(row.optimizer, 300);
  BOOST_TEST(ratio < 0.01, row.name << ": the loss fell to " << ratio << " of its start");
}

BOOST_AUTO_TEST_CASE(optimizers_work_on_double_trees) {
  TreeD params = column_tree({1.0, 2.0});
  const Optimizer opt = adam({.learning_rate = 0.1});
  OptStateD state = opt.init(params);
  for (int i = 0; i < 200; ++i) {  // minimize ||w||² / 2: the gradient is w
    const TreeD grads = params;
    opt.update(params, grads, state);
  }
  BOOST_TEST(arma::norm(arma::vec(params.at("w").value())) < 0.05);
}

// ===== the first two steps match the published update rules ================================
// w0 = (1, −2, 3), g1 = (0.5, −1, 2), g2 = (1, 0.5, −0.5), learning rate 0.1.

BOOST_AUTO_TEST_CASE(sgd_first_two_steps_follow_w_minus_lr_g) {
  const auto w = two_steps(sgd({.learning_rate = 0.1}));
  // w1 = w0 − 0.1 g1 = (1 − 0.05, −2 + 0.1, 3 − 0.2)
  check_close(w[0], {0.95, -1.9, 2.8});
  // w2 = w1 − 0.1 g2 = (0.95 − 0.1, −1.9 − 0.05, 2.8 + 0.05)
  check_close(w[1], {0.85, -1.95, 2.85});
}

BOOST_AUTO_TEST_CASE(momentum_first_two_steps_follow_heavy_ball_rule) {
  const auto w = two_steps(momentum({.learning_rate = 0.1, .momentum = 0.9}));
  // m1 = g1 = (0.5, −1, 2);  w1 = w0 − 0.1 m1
  check_close(w[0], {0.95, -1.9, 2.8});
  // m2 = 0.9 m1 + g2 = (0.45 + 1, −0.9 + 0.5, 1.8 − 0.5) = (1.45, −0.4, 1.3)
  // w2 = w1 − 0.1 m2 = (0.95 − 0.145, −1.9 + 0.04, 2.8 − 0.13)
  check_close(w[1], {0.805, -1.86, 2.67});
}

BOOST_AUTO_TEST_CASE(nesterov_first_two_steps_follow_look_ahead_rule) {
  const auto w = two_steps(nesterov({.learning_rate = 0.1, .momentum = 0.9}));
  // m1 = g1;  u1 = g1 + 0.9 m1 = 1.9 g1 = (0.95, −1.9, 3.8);  w1 = w0 − 0.1 u1
  check_close(w[0], {0.905, -1.81, 2.62});
  // m2 = 0.9 m1 + g2 = (1.45, −0.4, 1.3)
  // u2 = g2 + 0.9 m2 = (1 + 1.305, 0.5 − 0.36, −0.5 + 1.17) = (2.305, 0.14, 0.67)
  // w2 = w1 − 0.1 u2 = (0.905 − 0.2305, −1.81 − 0.014, 2.62 − 0.067)
  check_close(w[1], {0.6745, -1.824, 2.553});
}

BOOST_AUTO_TEST_CASE(adam_first_two_steps_follow_bias_corrected_rule) {
  // β1 = 0.9, β2 = 0.999, ε = 0.1 (large, so that its place outside the root shows).
  const auto w = two_steps(adam({.learning_rate = 0.1, .beta1 = 0.9, .beta2 = 0.999, .eps = 0.1}));
  // t = 1: m = 0.1 g1, v = 0.001 g1²;  m̂ = m / 0.1 = g1,  v̂ = v / 0.001 = g1²
  //        u1 = g1 / (|g1| + 0.1) = (0.5/0.6, −1/1.1, 2/2.1);  w1 = w0 − 0.1 u1
  check_close(w[0], {1 - 0.05 / 0.6, -2 + 0.1 / 1.1, 3 - 0.2 / 2.1});
  // t = 2: m = 0.9 m + 0.1 g2 = (0.145, −0.04, 0.13);   m̂ = m / (1 − 0.9²) = m / 0.19
  //        v = 0.999 v + 0.001 g2² = (0.00124975, 0.001249, 0.004246);
  //        v̂ = v / (1 − 0.999²) = v / 0.001999
  //        w2 = w1 − 0.1 m̂ / (√v̂ + 0.1)
  const double mh[] = {0.145 / 0.19, -0.04 / 0.19, 0.13 / 0.19};
  const double vh[] = {0.00124975 / 0.001999, 0.001249 / 0.001999, 0.004246 / 0.001999};
  check_close(w[1], {w[0](0) - 0.1 * mh[0] / (std::sqrt(vh[0]) + 0.1),
                     w[0](1) - 0.1 * mh[1] / (std::sqrt(vh[1]) + 0.1),
                     w[0](2) - 0.1 * mh[2] / (std::sqrt(vh[2]) + 0.1)});
  // The same numbers evaluated once (by an independent script from the same formulas).
  check_close(w[1], {0.830984828453, -1.88544824125, 2.86082949166});
}

BOOST_AUTO_TEST_CASE(adamw_first_two_steps_decay_weights_decoupled_from_moments) {
  // As Adam, plus λ = 0.1 times the current weights inside the learning-rate step:
  //   w ← w − 0.1 (m̂ / (√v̂ + 0.1) + 0.1 w)
  const auto w = two_steps(
      adamw({.learning_rate = 0.1, .beta1 = 0.9, .beta2 = 0.999, .eps = 0.1, .weight_decay = 0.1}));
  // t = 1: w1 = w0 − 0.1 (u1 + 0.1 w0) = w0 − 0.1 u1 − 0.01 w0
  check_close(w[0], {1 - 0.05 / 0.6 - 0.01, -2 + 0.1 / 1.1 + 0.02, 3 - 0.2 / 2.1 - 0.03});
  // t = 2: the moments are those of Adam (weight decay does not enter them)
  const double mh[] = {0.145 / 0.19, -0.04 / 0.19, 0.13 / 0.19};
  const double vh[] = {0.00124975 / 0.001999, 0.001249 / 0.001999, 0.004246 / 0.001999};
  std::vector<double> expected;
  for (int i = 0; i < 3; ++i)
    expected.push_back(w[0](i) - 0.1 * (mh[i] / (std::sqrt(vh[i]) + 0.1) + 0.1 * w[0](i)));
  check_close(w[1], {expected[0], expected[1], expected[2]});
  check_close(w[1], {0.811918161787, -1.84655733216, 2.80208187262});
}

BOOST_AUTO_TEST_CASE(rmsprop_first_two_steps_divide_by_running_rms) {
  // ρ = 0.9, ε = 0.01 outside the root:  ν ← 0.9 ν + 0.1 g²;  w ← w − 0.1 g / (√ν + 0.01)
  const auto w = two_steps(rmsprop({.learning_rate = 0.1, .decay = 0.9, .eps = 0.01}));
  // t = 1: ν = 0.1 g1² = (0.025, 0.1, 0.4)
  check_close(w[0], {1 - 0.1 * 0.5 / (std::sqrt(0.025) + 0.01), -2 + 0.1 * 1 / (std::sqrt(0.1) + 0.01),
                     3 - 0.1 * 2 / (std::sqrt(0.4) + 0.01)});
  // t = 2: ν = 0.9 ν + 0.1 g2² = (0.0225 + 0.1, 0.09 + 0.025, 0.36 + 0.025) = (0.1225, 0.115, 0.385)
  check_close(w[1], {w[0](0) - 0.1 * 1.0 / (std::sqrt(0.1225) + 0.01),
                     w[0](1) - 0.1 * 0.5 / (std::sqrt(0.115) + 0.01),
                     w[0](2) + 0.1 * 0.5 / (std::sqrt(0.385) + 0.01)});
  check_close(w[1], {0.424804786462, -1.83668436772, 2.76799860118});
}

BOOST_AUTO_TEST_CASE(adagrad_first_two_steps_divide_by_root_of_summed_squares) {
  // s ← s + g²;  w ← w − 0.1 g / (√s + 0.01)
  const auto w = two_steps(adagrad({.learning_rate = 0.1, .eps = 0.01}));
  // t = 1: s = g1² = (0.25, 1, 4), √s = (0.5, 1, 2)
  check_close(w[0], {1 - 0.05 / 0.51, -2 + 0.1 / 1.01, 3 - 0.2 / 2.01});
  // t = 2: s = (0.25 + 1, 1 + 0.25, 4 + 0.25) = (1.25, 1.25, 4.25)
  check_close(w[1], {w[0](0) - 0.1 * 1.0 / (std::sqrt(1.25) + 0.01),
                     w[0](1) - 0.1 * 0.5 / (std::sqrt(1.25) + 0.01),
                     w[0](2) + 0.1 * 0.5 / (std::sqrt(4.25) + 0.01)});
  check_close(w[1], {0.813310973229, -1.94531500455, 2.9246339958});
}

BOOST_AUTO_TEST_CASE(rmsprop_with_momentum_accumulates_the_scaled_gradient) {
  // b ← 0.5 b + g / (√ν + ε);  w ← w − 0.1 b;  one element, g = 2 then 2, ρ = 0.9, and
  // ε = 1e-300, which vanishes next to √ν in double
  const Optimizer opt = rmsprop({.learning_rate = 0.1, .decay = 0.9, .eps = 1e-300, .momentum = 0.5});
  TreeD params = column_tree({0.0});
  OptStateD state = opt.init(params);
  opt.update(params, column_tree({2.0}), state);
  // ν1 = 0.4, b1 = 2/√0.4;  w1 = −0.1 b1
  const double b1 = 2 / std::sqrt(0.4);
  BOOST_TEST(params.at("w").value()(0) == -0.1 * b1, boost::test_tools::tolerance(1e-12));
  opt.update(params, column_tree({2.0}), state);
  // ν2 = 0.36 + 0.4 = 0.76, b2 = 0.5 b1 + 2/√0.76;  w2 = w1 − 0.1 b2
  const double b2 = 0.5 * b1 + 2 / std::sqrt(0.76);
  BOOST_TEST(params.at("w").value()(0) == -0.1 * b1 - 0.1 * b2, boost::test_tools::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(update_returns_the_norm_of_the_applied_update) {
  TreeD params = column_tree({0.0, 0.0});
  const Optimizer opt = sgd({.learning_rate = 0.1});
  OptStateD state = opt.init(params);
  // update = −0.1 (3, 4), norm 0.5
  BOOST_TEST(opt.update(params, column_tree({3.0, 4.0}), state) == 0.5, boost::test_tools::tolerance(1e-12));
}

// ===== frozen params, validation before any change ========================================

BOOST_AUTO_TEST_CASE(frozen_params_with_empty_grads_are_untouched_and_not_decayed) {
  TreeD params;
  params.add("frozen", TreeD(arma::mat({1.0, 2.0, 3.0})));
  params.add("trained", TreeD(arma::mat({1.0, 2.0, 3.0})));
  TreeD grads;
  grads.add("frozen", TreeD(arma::mat()));  // empty: frozen (see prepare_grads)
  grads.add("trained", TreeD(arma::mat({0.1, 0.2, 0.3})));
  const Optimizer opt = adamw({.learning_rate = 0.1, .weight_decay = 0.5});
  OptStateD state = opt.init(params);
  const TreeD frozen_before = params.at("frozen");
  for (int i = 0; i < 3; ++i) opt.update(params, grads, state);
  BOOST_TEST(params.at("frozen").identical(frozen_before));
  BOOST_TEST(arma::accu(arma::abs(state.at("scale_by_adam/mu/frozen").value())) == 0.0);
  BOOST_TEST(arma::accu(arma::abs(state.at("scale_by_adam/nu/frozen").value())) == 0.0);
  BOOST_TEST(arma::accu(arma::abs(state.at("scale_by_adam/mu/trained").value())) > 0.0);
  BOOST_TEST(params.at("trained").value()(0) != 1.0);
}

BOOST_AUTO_TEST_CASE(frozen_params_do_not_count_in_the_global_norm) {
  TreeD params;
  params.add("frozen", TreeD(arma::mat({0.0})));
  params.add("trained", TreeD(arma::mat({0.0, 0.0})));
  TreeD grads;
  grads.add("frozen", TreeD(arma::mat()));
  grads.add("trained", TreeD(arma::mat({0.3, 0.4})));  // norm 0.5 < 1: unchanged
  const Optimizer opt = chain(clip_by_global_norm(1.0), sgd({.learning_rate = 1.0}));
  OptStateD state = opt.init(params);
  opt.update(params, grads, state);
  BOOST_TEST(params.at("trained").value()(0) == -0.3);
  BOOST_TEST(params.at("frozen").value()(0) == 0.0);
}

BOOST_AUTO_TEST_CASE(nan_gradient_throws_numeric_error_naming_path_and_changes_nothing) {
  TreeD params;
  params.add("a", TreeD(arma::mat({1.0, 2.0})));
  params.add("b", TreeD(arma::mat({3.0, 4.0})));
  TreeD grads;
  grads.add("a", TreeD(arma::mat({0.1, 0.2})));
  grads.add("b", TreeD(arma::mat({0.1, std::numeric_limits<double>::quiet_NaN()})));
  const Optimizer opt = adam();
  OptStateD state = opt.init(params);
  const TreeD params_before = params;
  const TreeD state_before = state;
  try {
    opt.update(params, grads, state);
    BOOST_FAIL("expected NumericError");
  } catch (const NumericError& e) {
    BOOST_TEST(e.path() == "b");
    BOOST_TEST(std::string(e.what()).find("NaN") != std::string::npos);
  }
  BOOST_TEST(params.identical(params_before));
  BOOST_TEST(state.tree().identical(state_before));
}

BOOST_AUTO_TEST_CASE(infinite_gradient_throws_numeric_error) {
  TreeD params = column_tree({1.0});
  const Optimizer opt = sgd();
  OptStateD state = opt.init(params);
  BOOST_CHECK_THROW(opt.update(params, column_tree({std::numeric_limits<double>::infinity()}), state),
                    NumericError);
  BOOST_TEST(params.at("w").value()(0) == 1.0);
}

BOOST_AUTO_TEST_CASE(grads_with_another_name_throw_config_error_naming_the_path) {
  TreeD params;
  params.add("layer", column_tree({1.0}));
  TreeD grads;
  grads.add("layer", TreeD());
  grads.at("layer").add("v", TreeD(arma::mat({1.0})));
  const Optimizer opt = sgd();
  OptStateD state = opt.init(params);
  try {
    opt.update(params, grads, state);
    BOOST_FAIL("expected ConfigError");
  } catch (const ConfigError& e) {
    BOOST_TEST(e.path() == "layer");
    BOOST_TEST(std::string(e.what()).find("'w'") != std::string::npos);
  }
  BOOST_TEST(params.at("layer/w").value()(0) == 1.0);
}

BOOST_AUTO_TEST_CASE(grads_of_another_shape_throw_shape_error_naming_the_path) {
  TreeD params;
  params.add("layer", column_tree({1.0, 2.0}));
  TreeD grads;
  grads.add("layer", column_tree({1.0, 2.0, 3.0}));
  const Optimizer opt = sgd();
  OptStateD state = opt.init(params);
  try {
    opt.update(params, grads, state);
    BOOST_FAIL("expected ShapeError");
  } catch (const ShapeError& e) {
    BOOST_TEST(e.path() == "layer/w");
  }
  BOOST_TEST(params.at("layer/w").value()(0) == 1.0);
}

BOOST_AUTO_TEST_CASE(state_of_another_optimizer_throws_config_error) {
  TreeD params = column_tree({1.0, 2.0});
  OptStateD state = momentum().init(params);
  const TreeD before = params;
  BOOST_CHECK_THROW(adam().update(params, column_tree({0.1, 0.1}), state), ConfigError);
  BOOST_TEST(params.identical(before));
}

BOOST_AUTO_TEST_CASE(state_made_for_other_params_throws_config_error_naming_the_path) {
  TreeD params = column_tree({1.0, 2.0});
  OptStateD state = adam().init(column_tree({1.0, 2.0, 3.0}));
  try {
    adam().update(params, column_tree({0.1, 0.1}), state);
    BOOST_FAIL("expected ConfigError");
  } catch (const ConfigError& e) {
    BOOST_TEST(e.path() == "scale_by_adam/mu/w");
  }
  BOOST_TEST(params.at("w").value()(0) == 1.0);
}

BOOST_AUTO_TEST_CASE(empty_state_throws_config_error) {
  TreeD params = column_tree({1.0});
  OptStateD state;
  BOOST_CHECK_THROW(sgd().update(params, column_tree({0.1}), state), ConfigError);
}

BOOST_AUTO_TEST_CASE(invalid_hyper_parameters_throw_config_error) {
  BOOST_CHECK_THROW(adam({.beta1 = 1.0}), ConfigError);
  BOOST_CHECK_THROW(momentum({.momentum = -0.1}), ConfigError);
  BOOST_CHECK_THROW(clip_by_global_norm(0.0), ConfigError);
  BOOST_CHECK_THROW(sgd({.learning_rate = std::numeric_limits<double>::quiet_NaN()}), ConfigError);
  BOOST_CHECK_THROW(step_decay({.step_size = 0}), ConfigError);
  // ε = 0 divides 0 by 0 at a zero gradient; a negative learning rate climbs the loss.
  BOOST_CHECK_THROW(adam({.eps = 0.0}), ConfigError);
  BOOST_CHECK_THROW(rmsprop({.eps = 0.0}), ConfigError);
  BOOST_CHECK_THROW(adagrad({.eps = 0.0}), ConfigError);
  BOOST_CHECK_THROW(sgd({.learning_rate = -1.0}), ConfigError);
  BOOST_CHECK_THROW(momentum({.learning_rate = cosine_decay({.peak_value = -0.1})}), ConfigError);
  BOOST_CHECK_NO_THROW(sgd({.learning_rate = 0.0}));
}

BOOST_AUTO_TEST_CASE(schedule_giving_nan_or_a_negative_learning_rate_throws_before_anything_changes) {
  for (const double later : {std::numeric_limits<double>::quiet_NaN(), -0.1}) {
    const Schedule bad("bad", [later](std::int64_t step) { return step < 1 ? 0.1 : later; });
    const Optimizer opt = adam({.learning_rate = bad});
    TreeD params = column_tree({1.0});
    OptStateD state = opt.init(params);
    opt.update(params, column_tree({0.5}), state);
    const TreeD params_before = params;
    const TreeD state_before = state;
    BOOST_CHECK_THROW(opt.update(params, column_tree({0.5}), state), NumericError);
    BOOST_TEST(params.identical(params_before));
    BOOST_TEST(state.tree().identical(state_before));
  }
}

// ===== state: layout, checkpoints, resuming =============================================

BOOST_AUTO_TEST_CASE(state_is_a_tree_with_one_entry_per_transform_and_a_count) {
  TreeD params = column_tree({1.0, 2.0});
  const OptStateD state = adamw().init(params);
  const std::vector<std::string> expected = {"count", "scale_by_adam/mu/w", "scale_by_adam/nu/w"};
  BOOST_TEST(state.paths() == expected, boost::test_tools::per_element());
  BOOST_TEST(state.size() == 4u);  // count, scale_by_adam, add_decayed_weights, scale_by_learning_rate
  BOOST_TEST(state.name(2) == "add_decayed_weights");
}

BOOST_AUTO_TEST_CASE(state_counts_the_updates) {
  TreeF params;
  params.add("w", TreeF(arma::fmat({1.0f})));
  const Optimizer opt = sgd();
  OptStateF state = opt.init(params);
  for (int i = 0; i < 3; ++i) opt.update(params, params, state);
  BOOST_TEST(Optimizer::step_count(state) == 3);
  BOOST_TEST(state.at("count").value()(0, 0) == 3.0f);
}

BOOST_AUTO_TEST_CASE(float_state_counts_exactly_up_to_two_to_the_24_then_holds) {
  // A float holds every whole number up to 2^24 = 16,777,216; 2^24 + 1 rounds back to 2^24.
  TreeF params;
  params.add("w", TreeF(arma::fmat({1.0f})));
  const Optimizer opt = sgd();
  OptStateF state = opt.init(params);
  state.at("count").value()(0, 0) = 16777215.0f;
  opt.update(params, params, state);
  BOOST_TEST(Optimizer::step_count(state) == 16777216);
  opt.update(params, params, state);
  BOOST_TEST(Optimizer::step_count(state) == 16777216);
}

BOOST_AUTO_TEST_CASE(copied_state_and_params_resume_bit_identically) {
  const LeastSquares problem;
  const Optimizer opt = chain(clip_by_global_norm(1.0),
                              adamw({.learning_rate = cosine_decay({.peak_value = 0.05,
                                                                    .warmup_steps = 3,
                                                                    .decay_steps = 20})}));
  TreeF params = problem.init();
  OptStateF state = opt.init(params);
  for (int i = 0; i < 5; ++i) opt.update(params, problem.grads(params), state);
  TreeF params_copy = params;
  OptStateF state_copy(state.tree());  // as if read back from a checkpoint: only the tree
  for (int i = 0; i < 5; ++i) {
    opt.update(params, problem.grads(params), state);
    opt.update(params_copy, problem.grads(params_copy), state_copy);
  }
  BOOST_TEST(params.identical(params_copy));
  BOOST_TEST(state.tree().identical(state_copy.tree()));
}

// Skips a case in a build that cannot count heap allocations (under AddressSanitizer).
boost::test_tools::assertion_result allocations_are_counted(boost::unit_test::test_unit_id) {
  boost::test_tools::assertion_result counted(lcbench::alloc::available());
  counted.message() << "heap allocations are not counted under AddressSanitizer";
  return counted;
}

BOOST_AUTO_TEST_CASE(steady_state_update_makes_no_heap_allocation,
                     *boost::unit_test::precondition(allocations_are_counted)) {
  // Leaves above Armadillo's 16-element in-object buffer, one frozen leaf, every ready-made
  // optimizer plus clipping and plateau.
  TreeF params;
  params.add("weight", TreeF(arma::fmat(20, 30, arma::fill::ones)));
  params.add("bias", TreeF(arma::fmat(20, 1, arma::fill::ones)));
  params.add("frozen", TreeF(arma::fmat(20, 20, arma::fill::ones)));
  TreeF grads;
  grads.add("weight", TreeF(arma::fmat(20, 30, arma::fill::value(0.01f))));
  grads.add("bias", TreeF(arma::fmat(20, 1, arma::fill::value(0.02f))));
  grads.add("frozen", TreeF(arma::fmat()));
  const std::vector<Optimizer> optimizers = {
      sgd(), momentum(), nesterov(), adam(), adamw(), rmsprop({.momentum = 0.9}), adagrad(),
      chain(clip_by_global_norm(1e-3), clip_by_value(1e-4), adam({.learning_rate = step_decay({})}),
            reduce_on_plateau())};
  for (const Optimizer& opt : optimizers) {
    OptStateF state = opt.init(params);
    opt.update(params, grads, state);  // warm-up: the update buffer takes its final shape
    std::uint64_t allocations = 0;
    {
      lcbench::alloc::Scope counting;
      for (int i = 0; i < 3; ++i) opt.update(params, grads, state);
      allocations = counting.counts().allocations();
    }
    BOOST_TEST(allocations == 0, opt.describe() << " allocated " << allocations << " times");
  }
}

// ===== a restored state is checked for values init and update never produce ===============

namespace {

// Params with a nested leaf, so that paths have several parts: "dense1/w" (3 × 1).
TreeD nested_params() {
  TreeD params;
  params.add("dense1", column_tree({1.0, -2.0, 3.0}));
  return params;
}

// The state of `opt` for nested_params() after one update, as a plain tree (what a checkpoint
// holds), with `edit` applied to it, wrapped the way a checkpoint is restored.
OptStateD restored_state(const Optimizer& opt, const std::function<void(TreeD&)>& edit) {
  TreeD params = nested_params();
  OptStateD state = opt.init(params);
  opt.update(params, column_tree_under("dense1", {0.5, -1.0, 2.0}), state);
  TreeD tree = std::as_const(state).tree();
  edit(tree);
  return OptStateD(std::move(tree));
}

// Expects an update of nested_params() with `state` to throw E whose path is `path` and
// whose message contains `words`, leaving params and state bit-identical. Twice: a state
// that failed its check is not taken as checked.
template <class E>
void expect_refused(const Optimizer& opt, OptStateD& state, const std::string& path,
                    const std::string& words) {
  TreeD params = nested_params();
  const TreeD params_before = params;
  const TreeD state_before = std::as_const(state).tree();
  for (int attempt = 0; attempt < 2; ++attempt) {
    try {
      opt.update(params, column_tree_under("dense1", {0.1, 0.1, 0.1}), state);
      BOOST_ERROR("expected an error naming " << path);
    } catch (const E& e) {
      BOOST_TEST(e.path() == path);
      BOOST_TEST(std::string(e.what()).find(words) != std::string::npos, e.what());
    }
    BOOST_TEST(params.identical(params_before));
    BOOST_TEST(std::as_const(state).tree().identical(state_before));
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(restored_state_with_nan_in_adam_mu_throws_numeric_error_naming_the_path) {
  OptStateD state = restored_state(adam(), [](TreeD& tree) {
    tree.at("scale_by_adam/mu/dense1/w").value()(1) = std::numeric_limits<double>::quiet_NaN();
  });
  expect_refused<NumericError>(adam(), state, "scale_by_adam/mu/dense1/w", "NaN at element (1, 0)");
}

BOOST_AUTO_TEST_CASE(restored_state_with_inf_in_a_momentum_trace_throws_numeric_error) {
  const Optimizer opt = momentum();
  OptStateD state = restored_state(opt, [](TreeD& tree) {
    tree.at("trace/trace/dense1/w").value()(2) = -std::numeric_limits<double>::infinity();
  });
  expect_refused<NumericError>(opt, state, "trace/trace/dense1/w", "Inf at element (2, 0)");
}

BOOST_AUTO_TEST_CASE(restored_state_with_a_negative_adam_second_moment_throws_config_error) {
  OptStateD state = restored_state(adam(), [](TreeD& tree) {
    tree.at("scale_by_adam/nu/dense1/w").value()(2) = -0.5;
  });
  expect_refused<ConfigError>(adam(), state, "scale_by_adam/nu/dense1/w",
                              "-0.5 at element (2, 0), but a second moment must be ≥ 0");
}

BOOST_AUTO_TEST_CASE(restored_rmsprop_and_adagrad_accumulators_must_not_be_negative) {
  const Optimizer rms = rmsprop({.momentum = 0.9});
  OptStateD rms_state = restored_state(rms, [](TreeD& tree) {
    tree.at("scale_by_rms/nu/dense1/w").value()(0) = -1e-30;
  });
  expect_refused<ConfigError>(rms, rms_state, "scale_by_rms/nu/dense1/w", "must be ≥ 0");
  OptStateD rss_state = restored_state(adagrad(), [](TreeD& tree) {
    tree.at("scale_by_rss/sum/dense1/w").value()(0) = -2.0;
  });
  expect_refused<ConfigError>(adagrad(), rss_state, "scale_by_rss/sum/dense1/w", "must be ≥ 0");
}

BOOST_AUTO_TEST_CASE(restored_state_with_a_negative_zero_second_moment_is_accepted) {
  // −0 compares equal to 0: a valid second moment (the update gives √−0 = −0, then ε).
  const Optimizer opt = adam();
  OptStateD state = restored_state(opt, [](TreeD& tree) {
    tree.at("scale_by_adam/nu/dense1/w").value()(0) = -0.0;
  });
  TreeD params = nested_params();
  BOOST_CHECK_NO_THROW(opt.update(params, column_tree_under("dense1", {0.1, 0.1, 0.1}), state));
}

BOOST_AUTO_TEST_CASE(restored_state_with_a_negative_fractional_or_huge_count_throws_config_error) {
  for (const double count : {-1.0, 2.5, 1e30, std::numeric_limits<double>::infinity()}) {
    OptStateD state = restored_state(adam(), [count](TreeD& tree) {
      tree.at("count").value()(0, 0) = count;
    });
    expect_refused<ConfigError>(adam(), state, "count", "the update count must be a whole number");
  }
}

BOOST_AUTO_TEST_CASE(restored_plateau_state_accepts_an_infinite_best_and_refuses_an_infinite_scale) {
  // A fresh plateau state holds best = +inf (nothing reported yet): valid.
  const Optimizer opt = chain(adam(), reduce_on_plateau());
  OptStateD fresh = restored_state(opt, [](TreeD&) {});
  TreeD params = nested_params();
  BOOST_CHECK_NO_THROW(opt.update(params, column_tree_under("dense1", {0.1, 0.1, 0.1}), fresh));
  OptStateD bad_scale = restored_state(opt, [](TreeD& tree) {
    tree.at("reduce_on_plateau/scale").value()(0) = std::numeric_limits<double>::infinity();
  });
  expect_refused<ConfigError>(opt, bad_scale, "reduce_on_plateau/scale", "finite and ≥ 0");
  OptStateD bad_cooldown = restored_state(opt, [](TreeD& tree) {
    tree.at("reduce_on_plateau/cooldown").value()(0) = -1.0;
  });
  expect_refused<ConfigError>(opt, bad_cooldown, "reduce_on_plateau/cooldown", "whole number ≥ 0");
}

BOOST_AUTO_TEST_CASE(restored_state_with_valid_values_trains_exactly_as_the_original) {
  // Every ready-made optimizer: the restored copy gives bit-identical params and state.
  for (const Optimizer& opt : {sgd(), momentum(), nesterov(), adam(), adamw(),
                               rmsprop({.momentum = 0.9}), adagrad(),
                               chain(adam(), reduce_on_plateau())}) {
    TreeD params = nested_params();
    OptStateD state = opt.init(params);
    opt.update(params, column_tree_under("dense1", {0.5, -1.0, 2.0}), state);
    TreeD params_copy = params;
    OptStateD restored(TreeD(std::as_const(state).tree()));
    for (int i = 0; i < 3; ++i) {
      const TreeD grads = column_tree_under("dense1", {0.1 * i, -0.2, 0.3});
      opt.update(params, grads, state);
      opt.update(params_copy, grads, restored);
    }
    BOOST_TEST(params.identical(params_copy), opt.describe());
    BOOST_TEST(std::as_const(state).tree().identical(std::as_const(restored).tree()), opt.describe());
  }
}

namespace {

// A stateless transform that counts the calls of its check_values.
class CountsValueChecks : public TransformImpl<CountsValueChecks> {
 public:
  explicit CountsValueChecks(int* calls) : calls_(calls) {}
  std::string kind() const override { return "counts_value_checks"; }
  int slice_entries() const noexcept override { return 0; }
  template <class T>
  void check_values_t(const Tree<T>&) const {
    ++*calls_;
  }

 private:
  int* calls_;
};

}  // namespace

BOOST_AUTO_TEST_CASE(state_values_are_checked_once_after_restoring_and_never_for_a_state_from_init) {
  int calls = 0;
  const Optimizer opt = chain(Optimizer(std::make_shared<const CountsValueChecks>(&calls)), sgd());
  TreeD params = nested_params();
  const TreeD grads = column_tree_under("dense1", {0.1, 0.2, 0.3});
  OptStateD state = opt.init(params);
  for (int i = 0; i < 3; ++i) opt.update(params, grads, state);
  BOOST_TEST(calls == 0);  // made by init: known good, no pass over its values
  OptStateD restored(TreeD(std::as_const(state).tree()));
  for (int i = 0; i < 3; ++i) opt.update(params, grads, restored);
  BOOST_TEST(calls == 1);  // checked by the first update only
  restored.tree();         // handed out for writing
  for (int i = 0; i < 3; ++i) opt.update(params, grads, restored);
  BOOST_TEST(calls == 2);
  // Reads through a const state cost nothing; any writable access costs one check.
  const OptStateD& view = restored;
  BOOST_TEST(view.at("count").value()(0) == 9.0);
  BOOST_TEST(view.child(0).value()(0) == 9.0);
  BOOST_TEST(view.find("count") != nullptr);
  opt.update(params, grads, restored);
  BOOST_TEST(calls == 2);
  restored.at("count");
  for (int i = 0; i < 2; ++i) opt.update(params, grads, restored);
  BOOST_TEST(calls == 3);
}

BOOST_AUTO_TEST_CASE(a_state_written_through_tree_is_checked_again_at_the_next_update) {
  const Optimizer opt = adam();
  TreeD params = nested_params();
  OptStateD state = opt.init(params);
  opt.update(params, column_tree_under("dense1", {0.5, -1.0, 2.0}), state);
  state.tree().at("scale_by_adam/nu/dense1/w").value()(1) = -3.0;
  expect_refused<ConfigError>(opt, state, "scale_by_adam/nu/dense1/w", "must be ≥ 0");
}

BOOST_AUTO_TEST_CASE(a_state_written_through_its_own_tree_members_is_checked_again_at_the_next_update) {
  // Each writable member of the Tree<T> interface the state inherits counts as a write.
  const Optimizer opt = adam();
  const std::vector<std::function<void(OptStateD&)>> writes = {
      [](OptStateD& s) { s.at("scale_by_adam/nu/dense1/w").value()(1) = -3.0; },
      [](OptStateD& s) { s.child(1).at("nu/dense1/w").value()(1) = -3.0; },
      [](OptStateD& s) { s.find("scale_by_adam")->at("nu/dense1/w").value()(1) = -3.0; },
      [](OptStateD& s) {
        s.for_each([](const std::string& path, arma::mat& m) {
          if (path == "scale_by_adam/nu/dense1/w") m(1) = -3.0;
        });
      },
  };
  for (const auto& write : writes) {
    TreeD params = nested_params();
    OptStateD state = opt.init(params);
    opt.update(params, column_tree_under("dense1", {0.5, -1.0, 2.0}), state);
    write(state);
    expect_refused<ConfigError>(opt, state, "scale_by_adam/nu/dense1/w", "must be ≥ 0");
  }
}

BOOST_AUTO_TEST_CASE(steady_state_training_step_of_an_mlp_makes_no_heap_allocation,
                     *boost::unit_test::precondition(allocations_are_counted)) {
  // The whole step (forward with the network's checks of its params, loss, backward,
  // update) on one thread, after two warm-up steps have given every buffer its shape.
  const Network net{Dense(20, 32), ReLU(), Dense(32, 16), ReLU(), Dense(16, 4)};
  Rng rng(3);
  TreeF params = net.init(Shape{20}, he_normal(), rng);
  TreeF state = net.init_state(Shape{20});
  const arma::fmat x(20, 64, arma::fill::randn);
  arma::uvec labels(64);
  for (arma::uword i = 0; i < labels.n_elem; ++i) labels[i] = i % 4;
  const Optimizer opt = momentum({.learning_rate = 0.01, .momentum = 0.9});
  OptStateF opt_state = opt.init(params);
  const SoftmaxCrossEntropy loss;
  StepWorkspace<float> ws;
  Needs needs;
  needs.input = false;
  const auto step = [&] {
    train_step(net, params, state, opt, opt_state, loss, x, Shape{20}, labels, needs, Context{},
               ws);
  };
  {
    // The counter must see the first step give the buffers their shapes, or the count
    // below proves nothing.
    lcbench::alloc::Scope counting;
    step();
    BOOST_TEST_REQUIRE(counting.counts().allocations() >= 1u);
  }
  step();
  std::uint64_t allocations = 0;
  {
    lcbench::alloc::Scope counting;
    for (int i = 0; i < 3; ++i) step();
    allocations = counting.counts().allocations();
  }
  BOOST_TEST(allocations == 0u);
}

// ===== slice-wise and multi-threaded updates =================================================

namespace {

// Params with leaves larger than one slice (2048 elements) and of odd sizes, a frozen leaf,
// and gradients that change from step to step.
struct SliceProblem {
  TreeF params;
  TreeF grads_at(int step) const {
    TreeF grads;
    Rng rng(100 + static_cast<std::uint64_t>(step));
    for (const char* name : {"weight", "bias"}) {
      arma::fmat g(arma::size(params.at(name).value()));
      g.imbue([&] { return static_cast<float>(rng.normal(0.0, 0.1)); });
      grads.add(name, TreeF(std::move(g)));
    }
    grads.add("frozen", TreeF(arma::fmat()));
    return grads;
  }
  SliceProblem() {
    Rng rng(5);
    arma::fmat w(73, 61), b(37, 1);
    w.imbue([&] { return static_cast<float>(rng.normal()); });
    b.imbue([&] { return static_cast<float>(rng.normal()); });
    params.add("weight", TreeF(std::move(w)));
    params.add("bias", TreeF(std::move(b)));
    params.add("frozen", TreeF(arma::fmat(5, 5, arma::fill::ones)));
  }
};

// An Executor running each task on a thread of its own (started per run).
class ThreadPerTask : public Executor {
 public:
  explicit ThreadPerTask(std::size_t n) : n_(n) {}
  std::size_t size() const noexcept override { return n_; }
  void run(void (*task)(void*, std::size_t), void* context) override {
    std::vector<std::thread> threads;
    for (std::size_t i = 1; i < n_; ++i) threads.emplace_back(task, context, i);
    task(context, 0);
    for (auto& t : threads) t.join();
  }

 private:
  std::size_t n_;
};

const std::vector<Optimizer>& element_wise_optimizers() {
  static const std::vector<Optimizer> all = {
      sgd({.learning_rate = 0.1}), momentum(), nesterov(), adam(), adamw(),
      rmsprop({.momentum = 0.9}), adagrad(),
      chain(clip_by_value(0.05), scale(0.5), adam({.learning_rate = exponential_decay({.initial_value = 1e-2, .decay_rate = 0.5, .decay_steps = 2})}))};
  return all;
}

}  // namespace

BOOST_AUTO_TEST_CASE(every_ready_made_optimizer_is_element_wise) {
  for (const Optimizer& opt : element_wise_optimizers())
    for (const auto& transform : opt.transforms())
      BOOST_TEST(transform->slice_entries() >= 0, transform->kind());
  BOOST_TEST(clip_by_global_norm(1.0).transforms()[0]->slice_entries() == -1);
  BOOST_TEST(reduce_on_plateau().transforms()[0]->slice_entries() == -1);
}

BOOST_AUTO_TEST_CASE(slice_wise_update_equals_the_whole_tree_update) {
  // A clip_by_global_norm that never clips makes the chain take the whole-tree path.
  for (const Optimizer& opt : element_wise_optimizers()) {
    const Optimizer by_trees = chain(clip_by_global_norm(1e30), opt);
    SliceProblem a, b;
    OptStateF state_a = opt.init(a.params), state_b = by_trees.init(b.params);
    for (int step = 0; step < 5; ++step) {
      const double norm_a = opt.update(a.params, a.grads_at(step), state_a);
      const double norm_b = by_trees.update(b.params, b.grads_at(step), state_b);
      // The norm is summed slice by slice: equal up to the order of the additions.
      BOOST_TEST(std::abs(norm_a - norm_b) <= 1e-12 * norm_b, opt.describe());
    }
    BOOST_TEST(a.params.identical(b.params), opt.describe());
    for (std::size_t i = 1; i < state_a.size(); ++i)
      BOOST_TEST(state_a.child(i).identical(state_b.child(i + 1)), opt.describe());
  }
}

BOOST_AUTO_TEST_CASE(update_split_between_threads_equals_the_one_thread_update) {
  for (const Optimizer& opt : element_wise_optimizers()) {
    for (std::size_t threads : {2u, 3u}) {
      ThreadPerTask executor(threads);
      SliceProblem a, b;
      OptStateF state_a = opt.init(a.params), state_b = opt.init(b.params);
      for (int step = 0; step < 5; ++step) {
        const double norm_a = opt.update(a.params, a.grads_at(step), state_a);
        const double norm_b = opt.update(b.params, b.grads_at(step), state_b, executor);
        BOOST_TEST(std::abs(norm_a - norm_b) <= 1e-12 * norm_a, opt.describe());
      }
      BOOST_TEST(a.params.identical(b.params), opt.describe() << " on " << threads << " threads");
      BOOST_TEST(state_a.tree().identical(state_b.tree()), opt.describe());
    }
  }
}

BOOST_AUTO_TEST_CASE(update_with_an_executor_checks_everything_before_changing) {
  // The threads scan their own shares of every leaf for NaN and Inf: a bad entry in the
  // first, a middle or the last share is found, named, and nothing changes.
  struct Bad {
    const char* leaf;
    arma::uword row, col;
    float value;
  };
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  for (std::size_t threads : {2u, 3u})
    for (const Bad bad : {Bad{"weight", 0, 0, nan}, Bad{"weight", 40, 30, -inf},
                          Bad{"weight", 72, 60, nan}, Bad{"bias", 36, 0, inf}}) {
      SliceProblem p;
      const Optimizer opt = adam();
      OptStateF state = opt.init(p.params);
      const TreeF params_before = p.params;
      const TreeF state_before = state.tree();
      TreeF grads = p.grads_at(0);
      grads.at(bad.leaf).value()(bad.row, bad.col) = bad.value;
      ThreadPerTask executor(threads);
      try {
        opt.update(p.params, grads, state, executor);
        BOOST_FAIL("expected NumericError");
      } catch (const NumericError& e) {
        BOOST_TEST(e.path() == bad.leaf);
        const std::string where =
            "(" + std::to_string(bad.row) + ", " + std::to_string(bad.col) + ")";
        BOOST_TEST(std::string(e.what()).find(where) != std::string::npos, e.what());
        BOOST_TEST(std::string(e.what()).find(std::isnan(bad.value) ? "NaN" : "Inf") !=
                   std::string::npos);
      }
      BOOST_TEST(p.params.identical(params_before));
      BOOST_TEST(state.tree().identical(state_before));
    }
}

// ===== clipping ===========================================================================

BOOST_AUTO_TEST_CASE(clip_by_global_norm_bounds_the_norm_across_leaves) {
  TreeD params;
  params.add("a", TreeD(arma::mat({0.0})));
  params.add("b", TreeD(arma::mat({0.0})));
  TreeD grads;
  grads.add("a", TreeD(arma::mat({3.0})));
  grads.add("b", TreeD(arma::mat({4.0})));  // global norm 5
  const Optimizer opt = clip_by_global_norm(1.0);  // params += clipped grads
  OptStateD state = opt.init(params);
  const double norm = opt.update(params, grads, state);
  BOOST_TEST(norm == 1.0, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(params.at("a").value()(0) == 0.6, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(params.at("b").value()(0) == 0.8, boost::test_tools::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(clip_by_global_norm_leaves_small_gradients_unchanged) {
  TreeD params = column_tree({0.0, 0.0});
  const Optimizer opt = clip_by_global_norm(1.0);
  OptStateD state = opt.init(params);
  opt.update(params, column_tree({0.3, -0.4}), state);
  BOOST_TEST(params.at("w").value()(0) == 0.3);
  BOOST_TEST(params.at("w").value()(1) == -0.4);
}

BOOST_AUTO_TEST_CASE(clip_by_value_clamps_each_element) {
  TreeD params = column_tree({0.0, 0.0, 0.0});
  const Optimizer opt = clip_by_value(1.0);
  OptStateD state = opt.init(params);
  opt.update(params, column_tree({-3.0, 0.5, 2.0}), state);
  check_close(arma::vec(params.at("w").value()), {-1.0, 0.5, 1.0});
}

// ===== composition ========================================================================

BOOST_AUTO_TEST_CASE(chain_flattens_nested_chains_and_numbers_repeated_kinds) {
  const Optimizer opt = chain(chain(scale(2.0), scale(3.0)), sgd({.learning_rate = 0.5}));
  const std::vector<std::string> expected = {"scale", "scale2", "scale_by_learning_rate"};
  BOOST_TEST(opt.entry_names() == expected, boost::test_tools::per_element());
  TreeD params = column_tree({0.0});
  OptStateD state = opt.init(params);
  opt.update(params, column_tree({1.0}), state);  // u = −0.5 · 3 · 2 · 1
  BOOST_TEST(params.at("w").value()(0) == -3.0);
}

BOOST_AUTO_TEST_CASE(scale_by_schedule_multiplies_by_the_value_at_the_step) {
  const Optimizer opt = scale_by_schedule(Schedule("linear", [](std::int64_t t) { return t + 1.0; }));
  TreeD params = column_tree({0.0});
  OptStateD state = opt.init(params);
  opt.update(params, column_tree({1.0}), state);  // step 0: +1
  opt.update(params, column_tree({1.0}), state);  // step 1: +2
  BOOST_TEST(params.at("w").value()(0) == 3.0);
}

BOOST_AUTO_TEST_CASE(describe_lists_the_transforms_with_their_hyper_parameters) {
  const std::string text = adam({.learning_rate = 0.001}).describe();
  BOOST_TEST(text == "chain(scale_by_adam(beta1=0.9, beta2=0.999, eps=1e-08), "
                     "scale_by_learning_rate(constant(0.001)))");
}

// ===== schedules ==========================================================================

BOOST_AUTO_TEST_CASE(constant_schedule_is_the_same_at_every_step) {
  const Schedule s = constant_schedule(0.3);
  BOOST_TEST(s(0) == 0.3);
  BOOST_TEST(s(1000000) == 0.3);
  const Schedule from_number = 0.3;
  BOOST_TEST(from_number(7) == 0.3);
}

BOOST_AUTO_TEST_CASE(step_decay_multiplies_by_gamma_every_step_size_steps) {
  const Schedule s = step_decay({.initial_value = 0.1, .gamma = 0.5, .step_size = 100});
  BOOST_TEST(s(0) == 0.1);
  BOOST_TEST(s(99) == 0.1);
  BOOST_TEST(s(100) == 0.05);   // 0.1 · 0.5¹
  BOOST_TEST(s(250) == 0.025);  // 0.1 · 0.5² (⌊250/100⌋ = 2)
}

BOOST_AUTO_TEST_CASE(exponential_decay_follows_rate_to_the_step_fraction) {
  const Schedule s = exponential_decay({.initial_value = 2.0, .decay_rate = 0.5, .decay_steps = 10});
  const auto tol = boost::test_tools::tolerance(1e-12);
  BOOST_TEST(s(0) == 2.0, tol);
  BOOST_TEST(s(5) == 2.0 * std::sqrt(0.5), tol);  // 2 · 0.5^(5/10)
  BOOST_TEST(s(20) == 0.5, tol);                  // 2 · 0.5²
  const Schedule stairs =
      exponential_decay({.initial_value = 2.0, .decay_rate = 0.5, .decay_steps = 10, .staircase = true});
  BOOST_TEST(stairs(19) == 1.0, tol);  // 2 · 0.5^⌊19/10⌋
}

BOOST_AUTO_TEST_CASE(cosine_decay_ramps_up_linearly_then_follows_half_a_cosine_to_the_end_value) {
  const Schedule s = cosine_decay(
      {.peak_value = 1.0, .warmup_steps = 10, .decay_steps = 100, .end_value = 0.1, .initial_value = 0.0});
  const auto tol = boost::test_tools::tolerance(1e-12);
  BOOST_TEST(s(0) == 0.0, tol);    // warmup start: initial_value
  BOOST_TEST(s(5) == 0.5, tol);    // 0 + (1 − 0) · 5/10
  BOOST_TEST(s(10) == 1.0, tol);   // peak at the end of the warmup
  BOOST_TEST(s(60) == 0.55, tol);  // 0.1 + 0.9 · (1 + cos(π/2)) / 2
  BOOST_TEST(s(35) == 0.1 + 0.9 * (1 + std::cos(M_PI * 0.25)) / 2, tol);
  BOOST_TEST(s(110) == 0.1, tol);  // end of the cosine phase
  BOOST_TEST(s(5000) == 0.1, tol); // and after
}

BOOST_AUTO_TEST_CASE(schedule_as_learning_rate_is_read_at_the_update_count) {
  // sgd with lr(t) = 0.1 · 0.5^⌊t/1⌋ and g = 1:  w = −0.1 − 0.05 − 0.025
  const Optimizer opt = sgd({.learning_rate = step_decay({.initial_value = 0.1, .gamma = 0.5, .step_size = 1})});
  TreeD params = column_tree({0.0});
  OptStateD state = opt.init(params);
  for (int i = 0; i < 3; ++i) opt.update(params, column_tree({1.0}), state);
  BOOST_TEST(params.at("w").value()(0) == -0.175, boost::test_tools::tolerance(1e-12));
}

// ===== reduce on plateau ==================================================================

BOOST_AUTO_TEST_CASE(plateau_reduces_the_scale_after_patience_reports_without_improvement) {
  const Optimizer opt = chain(sgd({.learning_rate = 1.0}), reduce_on_plateau({.factor = 0.5, .patience = 2}));
  TreeD params = column_tree({0.0});
  OptStateD state = opt.init(params);
  opt.report(state, 1.0);  // first value: improvement (best = 1)
  opt.report(state, 1.0);  // no improvement: 1 bad report
  BOOST_TEST(state.at("reduce_on_plateau/scale").value()(0) == 1.0);
  opt.report(state, 1.0);  // 2 bad reports = patience: scale 1 → 0.5
  BOOST_TEST(state.at("reduce_on_plateau/scale").value()(0) == 0.5);
  opt.update(params, column_tree({1.0}), state);  // u = −1 · 1 · 0.5
  BOOST_TEST(params.at("w").value()(0) == -0.5);
}

BOOST_AUTO_TEST_CASE(plateau_improvement_resets_the_count_of_bad_reports) {
  const Optimizer opt = reduce_on_plateau({.factor = 0.5, .patience = 2});
  OptStateD state = opt.init(column_tree({0.0}));
  opt.report(state, 1.0);
  opt.report(state, 1.0);  // bad 1
  opt.report(state, 0.5);  // better: bad 0
  opt.report(state, 0.6);  // bad 1
  BOOST_TEST(state.at("reduce_on_plateau/scale").value()(0) == 1.0);
  opt.report(state, 0.6);  // bad 2: reduce
  BOOST_TEST(state.at("reduce_on_plateau/scale").value()(0) == 0.5);
}

BOOST_AUTO_TEST_CASE(plateau_never_goes_below_min_scale) {
  const Optimizer opt = reduce_on_plateau({.factor = 0.1, .patience = 1, .min_scale = 0.05});
  OptStateD state = opt.init(column_tree({0.0}));
  opt.report(state, 1.0);
  for (int i = 0; i < 5; ++i) opt.report(state, 2.0);  // 1 → 0.1 → 0.05 → 0.05 ...
  BOOST_TEST(state.at("reduce_on_plateau/scale").value()(0) == 0.05);
}

BOOST_AUTO_TEST_CASE(plateau_ignores_bad_reports_during_cooldown) {
  const Optimizer opt = reduce_on_plateau({.factor = 0.5, .patience = 1, .cooldown = 2});
  OptStateD state = opt.init(column_tree({0.0}));
  opt.report(state, 1.0);
  opt.report(state, 2.0);  // bad: reduce to 0.5, cooldown 2
  opt.report(state, 2.0);  // cooldown
  opt.report(state, 2.0);  // cooldown
  BOOST_TEST(state.at("reduce_on_plateau/scale").value()(0) == 0.5);
  opt.report(state, 2.0);  // counted again: reduce to 0.25
  BOOST_TEST(state.at("reduce_on_plateau/scale").value()(0) == 0.25);
}

BOOST_AUTO_TEST_CASE(plateau_in_maximize_mode_treats_larger_values_as_better) {
  const Optimizer opt = reduce_on_plateau({.factor = 0.5, .patience = 1, .maximize = true});
  OptStateD state = opt.init(column_tree({0.0}));
  opt.report(state, 0.5);
  opt.report(state, 0.7);  // better accuracy
  BOOST_TEST(state.at("reduce_on_plateau/scale").value()(0) == 1.0);
  opt.report(state, 0.6);  // worse
  BOOST_TEST(state.at("reduce_on_plateau/scale").value()(0) == 0.5);
}

BOOST_AUTO_TEST_CASE(optimizers_without_plateau_ignore_reports) {
  const Optimizer opt = adam();
  OptStateD state = opt.init(column_tree({0.0}));
  const TreeD before = state;
  opt.report(state, 1.0);
  BOOST_TEST(state.tree().identical(before));
}

// ===== parameter groups: partition ========================================================

namespace {

// encoder/dense1/{weight (3 × 2), bias (3 × 1)}, encoder/relu1 (no params),
// head/dense1/{weight (2 × 3), bias (2 × 1)}, with distinct values.
TreeD encoder_and_head() {
  TreeD params;
  auto& encoder = params.add("encoder", TreeD());
  auto& dense = encoder.add("dense1", TreeD());
  dense.add("weight", TreeD(arma::mat({{0.5, -1.0}, {2.0, 0.25}, {-0.75, 1.5}})));
  dense.add("bias", TreeD(arma::mat({0.1, -0.2, 0.3}).t()));
  encoder.add("relu1", TreeD());
  auto& head = params.add("head", TreeD()).add("dense1", TreeD());
  head.add("weight", TreeD(arma::mat({{1.0, -0.5, 0.25}, {-2.0, 0.75, 1.25}})));
  head.add("bias", TreeD(arma::mat({-0.4, 0.6}).t()));
  return params;
}

// Gradients that depend on the params and the step, as a loss's would.
TreeD grads_at(const TreeD& params, int step) {
  return map(params, [step](const std::string&, const arma::mat& p) {
    return arma::mat(arma::sin(3.0 * p) + 0.1 * step);
  });
}

// The encoder at 1e-2 with Adam, the head's weights with AdamW, its biases without decay.
Optimizer three_groups() {
  return partition({
      {.name = "encoder", .paths = {"encoder"}, .optimizer = adam({.learning_rate = 1e-2})},
      {.name = "weights", .paths = {"head/*/weight"},
       .optimizer = adamw({.learning_rate = 1e-1, .weight_decay = 0.1})},
      {.name = "biases", .paths = {"head/*/bias"}, .optimizer = adam({.learning_rate = 1e-1})},
  });
}

}  // namespace

BOOST_AUTO_TEST_CASE(each_parameter_group_follows_its_own_chain_run_alone_on_its_params) {
  const std::vector<std::pair<std::vector<std::string>, Optimizer>> alone = {
      {{"encoder"}, adam({.learning_rate = 1e-2})},
      {{"head/*/weight"}, adamw({.learning_rate = 1e-1, .weight_decay = 0.1})},
      {{"head/*/bias"}, adam({.learning_rate = 1e-1})},
  };
  const Optimizer groups = three_groups();
  TreeD params = encoder_and_head();
  OptStateD state = groups.init(params);
  std::vector<TreeD> parts;
  std::vector<OptStateD> part_states;
  for (const auto& [paths, opt] : alone) {
    parts.push_back(select(params, paths));
    part_states.push_back(opt.init(parts.back()));
  }
  for (int step = 0; step < 5; ++step) {
    const TreeD grads = grads_at(params, step);
    groups.update(params, grads, state);
    for (std::size_t g = 0; g < alone.size(); ++g)
      alone[g].second.update(parts[g], select(grads, alone[g].first), part_states[g]);
  }
  for (std::size_t g = 0; g < alone.size(); ++g) {
    BOOST_TEST(select(params, alone[g].first).identical(parts[g]), alone[g].first[0]);
    const TreeD& group_state = std::as_const(state).at("partition").child(g);
    for (std::size_t i = 0; i < group_state.size(); ++i)  // after the count, entry by entry
      BOOST_TEST(group_state.child(i).identical(std::as_const(part_states[g]).child(i + 1)));
  }
}

BOOST_AUTO_TEST_CASE(partition_state_holds_one_subtree_per_group_mirroring_its_params) {
  const TreeD params = encoder_and_head();
  const OptStateD state = three_groups().init(params);
  BOOST_TEST(state.paths() == (std::vector<std::string>{
                                  "count",
                                  "partition/encoder/scale_by_adam/mu/encoder/dense1/weight",
                                  "partition/encoder/scale_by_adam/mu/encoder/dense1/bias",
                                  "partition/encoder/scale_by_adam/nu/encoder/dense1/weight",
                                  "partition/encoder/scale_by_adam/nu/encoder/dense1/bias",
                                  "partition/weights/scale_by_adam/mu/head/dense1/weight",
                                  "partition/weights/scale_by_adam/nu/head/dense1/weight",
                                  "partition/biases/scale_by_adam/mu/head/dense1/bias",
                                  "partition/biases/scale_by_adam/nu/head/dense1/bias",
                              }));
  BOOST_TEST(state.at("partition/weights").name(1) == "add_decayed_weights");
}

BOOST_AUTO_TEST_CASE(a_set_to_zero_group_keeps_its_params_while_the_others_train) {
  const Optimizer opt = partition({
      {.name = "frozen", .paths = {"encoder"}, .optimizer = set_to_zero()},
      {.name = "trained", .paths = {"head"}, .optimizer = sgd({.learning_rate = 0.5})},
  });
  TreeD params = encoder_and_head();
  const TreeD before = params;
  OptStateD state = opt.init(params);
  for (int step = 0; step < 3; ++step) opt.update(params, grads_at(params, step), state);
  BOOST_TEST(params.at("encoder").identical(before.at("encoder")));
  BOOST_TEST(!params.at("head").identical(before.at("head")));
}

BOOST_AUTO_TEST_CASE(groups_skip_params_with_empty_grads_like_every_chain) {
  TreeD params = encoder_and_head();
  const TreeD before = params;
  TreeD grads = grads_at(params, 0);
  grads.at("head/dense1/weight").value().reset();  // frozen by fit's freeze
  const Optimizer opt = three_groups();
  OptStateD state = opt.init(params);
  opt.update(params, grads, state);
  BOOST_TEST(params.at("head/dense1/weight").identical(before.at("head/dense1/weight")));
  BOOST_TEST(!params.at("head/dense1/bias").identical(before.at("head/dense1/bias")));
}

BOOST_AUTO_TEST_CASE(a_param_in_no_group_throws_config_error_naming_its_path) {
  const Optimizer opt = partition({
      {.name = "encoder", .paths = {"encoder"}, .optimizer = adam()},
      {.name = "weights", .paths = {"head/*/weight"}, .optimizer = adam()},
  });
  BOOST_CHECK_EXCEPTION(opt.init(encoder_and_head()), ConfigError, [](const ConfigError& e) {
    return e.path() == "head/dense1/bias" &&
           std::string(e.what()).find("no parameter group") != std::string::npos &&
           std::string(e.what()).find("weights [head/*/weight]") != std::string::npos;
  });
}

BOOST_AUTO_TEST_CASE(a_param_in_two_groups_throws_config_error_naming_its_path_and_both_groups) {
  const Optimizer opt = partition({
      {.name = "all", .paths = {"*"}, .optimizer = adam()},
      {.name = "biases", .paths = {"*/bias"}, .optimizer = sgd()},
  });
  BOOST_CHECK_EXCEPTION(opt.init(encoder_and_head()), ConfigError, [](const ConfigError& e) {
    const std::string what = e.what();
    return e.path() == "encoder/dense1/bias" && what.find("'all' and 'biases'") != std::string::npos;
  });
}

BOOST_AUTO_TEST_CASE(a_group_matching_no_param_throws_config_error_naming_the_group) {
  const Optimizer opt = partition({
      {.name = "all", .paths = {"*"}, .optimizer = adam()},
      {.name = "decoder", .paths = {"decoder"}, .optimizer = sgd()},
  });
  BOOST_CHECK_EXCEPTION(opt.init(encoder_and_head()), ConfigError, [](const ConfigError& e) {
    return std::string(e.what()).find("'decoder' matches no param") != std::string::npos;
  });
}

BOOST_AUTO_TEST_CASE(invalid_parameter_groups_throw_config_error_when_made) {
  BOOST_CHECK_THROW(partition({}), ConfigError);
  BOOST_CHECK_THROW(partition({{.name = "", .paths = {"*"}, .optimizer = sgd()}}), ConfigError);
  BOOST_CHECK_THROW(partition({{.name = "a/b", .paths = {"*"}, .optimizer = sgd()}}), ConfigError);
  BOOST_CHECK_THROW(partition({{.name = "a", .paths = {}, .optimizer = sgd()}}), ConfigError);
  BOOST_CHECK_EXCEPTION(partition({{.name = "a", .paths = {"x"}, .optimizer = sgd()},
                                   {.name = "a", .paths = {"y"}, .optimizer = sgd()}}),
                        ConfigError, [](const ConfigError& e) {
                          return std::string(e.what()).find("'a'") != std::string::npos;
                        });
}

BOOST_AUTO_TEST_CASE(params_of_another_structure_at_update_throw_and_change_nothing) {
  const Optimizer opt = three_groups();
  OptStateD state = opt.init(encoder_and_head());
  TreeD params = encoder_and_head();
  params.at("head").add("dense2", TreeD()).add("weight", TreeD(arma::mat(1, 1, arma::fill::ones)));
  const TreeD before = params;
  const TreeD state_before = std::as_const(state).tree();
  // head/dense2/weight matches the weights group, whose state has no entry for it.
  BOOST_CHECK_EXCEPTION(opt.update(params, grads_at(params, 0), state), ConfigError,
                        [](const ConfigError& e) {
                          return e.path().rfind("partition/weights/scale_by_adam/mu/head", 0) == 0;
                        });
  BOOST_TEST(params.identical(before));
  BOOST_TEST(std::as_const(state).tree().identical(state_before));
}

BOOST_AUTO_TEST_CASE(a_restored_group_state_with_nan_throws_numeric_error_naming_the_path) {
  const Optimizer opt = three_groups();
  TreeD params = encoder_and_head();
  OptStateD state = opt.init(params);
  opt.update(params, grads_at(params, 0), state);
  TreeD tree = std::as_const(state).tree();
  tree.at("partition/biases/scale_by_adam/nu/head/dense1/bias").value()(1, 0) = NAN;
  OptStateD restored(std::move(tree));
  BOOST_CHECK_EXCEPTION(opt.update(params, grads_at(params, 1), restored), NumericError,
                        [](const NumericError& e) {
                          return e.path() == "partition/biases/scale_by_adam/nu/head/dense1/bias";
                        });
}

BOOST_AUTO_TEST_CASE(groups_resume_bit_identically_from_a_checkpoint_file) {
  const testing_files::TempDir dir("layercache-partition");
  const Optimizer opt = chain(clip_by_global_norm(10.0), three_groups());
  TreeD params = encoder_and_head();
  OptStateD state = opt.init(params);
  for (int step = 0; step < 4; ++step) opt.update(params, grads_at(params, step), state);
  save_checkpoint(dir.file("mid.h5"), {{"params", &params}, {"optimizer", &std::as_const(state).tree()}});

  const Checkpoint<double> loaded = load_checkpoint<double>(dir.file("mid.h5"));
  TreeD resumed_params = loaded.trees.at("params");
  OptStateD resumed_state(loaded.trees.at("optimizer"));
  for (int step = 4; step < 8; ++step) {
    opt.update(params, grads_at(params, step), state);
    opt.update(resumed_params, grads_at(resumed_params, step), resumed_state);
  }
  BOOST_TEST(resumed_params.identical(params));
  BOOST_TEST(std::as_const(resumed_state).tree().identical(std::as_const(state).tree()));
}

BOOST_AUTO_TEST_CASE(a_plateau_inside_a_group_receives_the_reported_metric) {
  const Optimizer opt = partition({
      {.name = "encoder", .paths = {"encoder"}, .optimizer = set_to_zero()},
      {.name = "head", .paths = {"head"},
       .optimizer = chain(sgd(), reduce_on_plateau({.factor = 0.5, .patience = 1}))},
  });
  OptStateD state = opt.init(encoder_and_head());
  opt.report(state, 1.0);
  opt.report(state, 2.0);  // worse: the head's scale halves
  BOOST_TEST(state.at("partition/head/reduce_on_plateau/scale").value()(0) == 0.5);
}

BOOST_AUTO_TEST_CASE(describe_lists_the_groups_with_their_patterns_and_chains) {
  const Optimizer opt = partition({
      {.name = "encoder", .paths = {"encoder"}, .optimizer = set_to_zero()},
      {.name = "head", .paths = {"head/*"}, .optimizer = sgd({.learning_rate = 0.5})},
  });
  BOOST_TEST(opt.describe() ==
             "chain(partition(encoder [encoder]: chain(set_to_zero), "
             "head [head/*]: chain(scale_by_learning_rate(constant(0.5)))))");
}
