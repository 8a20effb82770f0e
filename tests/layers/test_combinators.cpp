// Specification of the machinery every combinator shares with Network: paths in errors,
// undeclared entries and NaN checks inside any nesting, frozen branches and buffer reuse
// (Residual's and Parallel's own results are in test_residual.cpp and test_parallel.cpp). The gradient, cache-contract and float/double
// checks of every combinator are rows of the table in test_layers.cpp.
#include <boost/test/unit_test.hpp>

#include "layer_test_support.hpp"
#include "layercache/layercache.hpp"

using namespace layercache;
using namespace layer_tests;

namespace {

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
  const arma::mat x = random_batch(4, 3, 6), dy = random_batch(2, 3, 7);
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
  const arma::mat x = random_batch(4, 8, 8), dy = random_batch(2, 8, 9);
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
