// Specification of the combinators (Residual, Parallel) and of the machinery they share with
// Network: paths in errors, undeclared entries and NaN checks inside any nesting, and the
// results a hand-written composition gives. The gradient, cache-contract and float/double
// checks of every combinator are rows of the table in test_layers.cpp.
#include <boost/test/unit_test.hpp>

#include "layer_test_support.hpp"
#include "layercache/layercache.hpp"

using namespace layercache;
using namespace layer_tests;

namespace {

arma::mat batch(std::size_t rows, std::size_t cols, std::uint64_t seed) {
  Rng rng(seed);
  return random_matrix(rows, cols, rng);
}

Context checking_finite() {
  Context ctx;
  ctx.check_finite = true;
  return ctx;
}

// The layers with combinators inside each other that the error tests below use.
AnyLayer nested_block() {
  return Network{Dense(4, 5),
                 named("block", Residual(Network{Dense(5, 5), Tanh(), Dense(5, 5)})),
                 named("heads", Parallel({Dense(5, 2), Network{Dense(5, 2), Sigmoid()}},
                                         Merge::add))};
}

}  // namespace

BOOST_AUTO_TEST_CASE(residual_adds_its_input_to_the_inner_output) {
  const Network inner{Dense(3, 3), Tanh()};
  const Residual block(inner);
  Rng rng(1);
  const auto params = block.init<double>(Shape{3}, he_normal(), rng);
  BOOST_TEST(params.paths() == (std::vector<std::string>{"inner/dense1/weight",
                                                          "inner/dense1/bias"}));
  const arma::mat x = batch(3, 4, 2);
  const arma::mat expected = x + inner.infer(params.at("inner"), x);
  BOOST_TEST(arma::approx_equal(block.forward(params, x).y(), expected, "absdiff", 0.0));
  BOOST_TEST(arma::approx_equal(block.infer(params, x), expected, "absdiff", 0.0));
}

BOOST_AUTO_TEST_CASE(residual_with_a_projection_adds_the_projection_of_its_input) {
  const Residual block(Dense(3, 5), named("shortcut", Dense(3, 5, {.bias = false})));
  Rng rng(1);
  const auto params = block.init<double>(Shape{3}, he_normal(), rng);
  BOOST_TEST(params.contains("shortcut/weight"));
  const arma::mat x = batch(3, 4, 3);
  const arma::mat expected = params.at("inner/weight").value() * x +
                             arma::repmat(params.at("inner/bias").value(), 1, 4) +
                             params.at("shortcut/weight").value() * x;
  BOOST_TEST(arma::abs(block.forward(params, x).y() - expected).max() < 1e-12);
}

BOOST_AUTO_TEST_CASE(residual_whose_paths_differ_in_shape_says_to_add_a_projection) {
  const Residual block(Dense(3, 5));
  BOOST_CHECK_EXCEPTION(block.output_shape(Shape{3}), ShapeError, [](const ShapeError& e) {
    return contains(e.what(), "the inner path gives (5) but the skip path (3)") &&
           contains(e.what(), "projection");
  });
}

BOOST_AUTO_TEST_CASE(parallel_concat_stacks_the_branch_outputs_sample_by_sample) {
  const Parallel both{Dense(3, 2), Dense(3, 4)};
  Rng rng(1);
  const auto params = both.init<double>(Shape{3}, he_normal(), rng);
  const arma::mat x = batch(3, 5, 4);
  const arma::mat y = both.forward(params, x).y();
  BOOST_TEST(y.n_rows == 6u);
  BOOST_TEST(arma::approx_equal(y.rows(0, 1), Dense(3, 2).infer(params.at("dense1"), x),
                                "absdiff", 0.0));
  BOOST_TEST(arma::approx_equal(y.rows(2, 5), Dense(3, 4).infer(params.at("dense2"), x),
                                "absdiff", 0.0));
  BOOST_TEST(arma::approx_equal(both.infer(params, x), y, "absdiff", 0.0));
}

BOOST_AUTO_TEST_CASE(parallel_concat_of_images_stacks_channels) {
  const Parallel both{Conv2D({.in_channels = 1, .out_channels = 2, .padding = 1}),
                      Conv2D({.in_channels = 1, .out_channels = 3, .kernel = 1})};
  BOOST_TEST((both.output_shape(Shape{1, 6, 5}) == Shape{5, 6, 5}));
  BOOST_CHECK_EXCEPTION(
      (Parallel{Conv2D({.in_channels = 1, .out_channels = 2}),
                Conv2D({.in_channels = 1, .out_channels = 3, .kernel = 1})}
           .output_shape(Shape{1, 6, 5})),
      ShapeError, [](const ShapeError& e) {
        return contains(e.what(), "cannot concat conv2d1 (2, 4, 3) with conv2d2 (3, 6, 5)");
      });
}

BOOST_AUTO_TEST_CASE(parallel_add_and_multiply_need_equal_shapes) {
  BOOST_CHECK_EXCEPTION((Parallel({Dense(3, 2), Dense(3, 4)}, Merge::add).output_shape(Shape{3})),
                        ShapeError, [](const ShapeError& e) {
                          return contains(e.what(), "cannot add dense1 (2) with dense2 (4)");
                        });
  const Parallel gate({Dense(3, 2), Network{Dense(3, 2), Sigmoid()}}, Merge::multiply);
  Rng rng(2);
  const auto params = gate.init<double>(Shape{3}, he_normal(), rng);
  const arma::mat x = batch(3, 4, 5);
  const arma::mat expected = Dense(3, 2).infer(params.at("dense1"), x) %
                             Network{Dense(3, 2), Sigmoid()}.infer(params.at("network1"), x);
  BOOST_TEST(arma::abs(gate.forward(params, x).y() - expected).max() < 1e-15);
}

BOOST_AUTO_TEST_CASE(an_entry_no_layer_declares_inside_a_combinator_is_rejected_with_its_path) {
  const AnyLayer net = nested_block();
  Rng rng(1);
  const TreeF good = net->init(Shape{4}, he_normal(), rng);
  const arma::fmat x(4, 3, arma::fill::randn);
  const auto out = net->forward(good, x);
  const arma::fmat dy(2, 3, arma::fill::ones);
  for (const std::string path : {"block/inner/dense2", "block/inner", "block", "heads/network1",
                                 "heads/dense1", "heads"}) {
    TreeF params = good;
    params.at(path).add("extra", TreeF(arma::fmat(2, 2, arma::fill::ones)));
    const auto check = [&](const ConfigError& e) {
      BOOST_TEST(e.path() == path, e.what());
      BOOST_TEST(contains(e.what(), "unexpected entry 'extra' in the params"), e.what());
      return true;
    };
    BOOST_CHECK_EXCEPTION(net->forward(params, x), ConfigError, check);
    BOOST_CHECK_EXCEPTION(net->backward(params, *out.cache, dy), ConfigError, check);
    BOOST_CHECK_EXCEPTION(net->infer(params, x), ConfigError, check);
  }
}

BOOST_AUTO_TEST_CASE(a_nan_made_inside_a_combinator_is_named_at_the_innermost_layer) {
  const AnyLayer net = nested_block();
  Rng rng(1);
  const arma::fmat x(4, 3, arma::fill::randn);
  for (const std::string path : {"block/inner/dense1", "block/inner/dense2", "heads/dense1",
                                 "heads/network1/dense1"}) {
    auto params = net->init(Shape{4}, he_normal(), rng);
    params.at(path + "/bias").value()(0, 0) = arma::datum::nan;
    BOOST_CHECK_EXCEPTION(net->forward(params, x, checking_finite()), NumericError,
                          [&](const NumericError& e) {
                            BOOST_TEST(std::string(e.what()) == path + ": output contains NaN or Inf");
                            return true;
                          });
  }
}

BOOST_AUTO_TEST_CASE(an_overflow_made_by_a_merge_is_named_at_the_combinator) {
  // Each branch's output is finite; their sum is not.
  const Network net{Dense(1, 1, {.bias = false}),
                    named("sum", Parallel({Dense(1, 1, {.bias = false}),
                                           Dense(1, 1, {.bias = false})},
                                          Merge::add))};
  Rng rng(1);
  auto params = net.init(Shape{1}, he_normal(), rng);
  params.at("dense1/weight").value().fill(1.0f);
  params.at("sum/dense1/weight").value().fill(3e38f);
  params.at("sum/dense2/weight").value().fill(3e38f);
  BOOST_CHECK_EXCEPTION(net.forward(params, arma::fmat{1.0f}, checking_finite()), NumericError,
                        [](const NumericError& e) {
                          return std::string(e.what()) == "sum: output contains NaN or Inf";
                        });
}

BOOST_AUTO_TEST_CASE(a_nan_input_is_named_at_the_first_layer_inside_the_combinators) {
  const Network net{named("block", Residual(Network{Dense(4, 4), Tanh()})), Dense(4, 2)};
  Rng rng(1);
  const auto params = net.init(Shape{4}, he_normal(), rng);
  arma::fmat x(4, 3, arma::fill::randn);
  x(1, 1) = arma::datum::nan;
  BOOST_CHECK_EXCEPTION(net.forward(params, x, checking_finite()), NumericError,
                        [](const NumericError& e) {
                          return std::string(e.what()) ==
                                 "block/inner/dense1: input contains NaN or Inf";
                        });
}

BOOST_AUTO_TEST_CASE(a_shape_error_inside_a_combinator_names_the_path) {
  const Network net{Dense(4, 5), named("heads", Parallel{Dense(5, 2), Dense(4, 2)})};
  BOOST_CHECK_EXCEPTION(net.output_shape(Shape{4}), ShapeError, [](const ShapeError& e) {
    return e.path() == "heads/dense2" && contains(e.what(), "expected input (4), got (5)");
  });
}

BOOST_AUTO_TEST_CASE(frozen_branches_compute_no_gradient_and_the_rest_is_unchanged) {
  const AnyLayer net = nested_block();
  Rng rng(3);
  const auto params = net->init<double>(Shape{4}, he_normal(), rng);
  const arma::mat x = batch(4, 3, 6), dy = batch(2, 3, 7);
  const auto out = net->forward(params, x);
  const auto full = net->backward(params, *out.cache, dy);
  const FrozenSet frozen = freeze(params, {"block/*", "heads/network1"});
  Needs needs;
  needs.frozen = &frozen;
  const auto part = net->backward(params, *out.cache, dy, needs);
  part.grads.for_each([&](const std::string& path, const arma::mat& g) {
    if (frozen.contains(path))
      BOOST_TEST(g.is_empty(), path);
    else
      BOOST_TEST(arma::approx_equal(g, full.grads.at(path).value(), "absdiff", 0.0), path);
  });
  BOOST_TEST(arma::approx_equal(part.dx, full.dx, "absdiff", 0.0));
}

BOOST_AUTO_TEST_CASE(a_steady_state_step_through_combinators_reuses_every_buffer) {
  const AnyLayer net = nested_block();
  Rng rng(4);
  const auto params = net->init<double>(Shape{4}, he_normal(), rng);
  const arma::mat x = batch(4, 8, 8), dy = batch(2, 8, 9);
  ForwardResult<double> fwd;
  BackwardResult<double> bwd;
  net->forward(params, x, Shape{4}, Context{}, fwd);
  net->backward(params, *fwd.cache, dy, Needs{}, bwd);
  const double* output = fwd.y().memptr();
  const auto grads = bwd.grads;
  net->forward(params, x, Shape{4}, Context{}, fwd);
  net->backward(params, *fwd.cache, dy, Needs{}, bwd);
  BOOST_TEST(fwd.y().memptr() == output);  // the same output buffer, overwritten
  BOOST_TEST(bwd.grads.identical(grads));
  BOOST_TEST(bwd.dx.n_elem == 4u * 8u);
}
