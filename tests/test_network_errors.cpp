// Specification of the errors networks raise: each names the layer path and says what was
// expected and what was found.
#include <boost/test/unit_test.hpp>

#include <limits>
#include <string>

#include "layercache/layercache.hpp"

using namespace layercache;

namespace {

bool mentions(const std::exception& e, const std::string& text) {
  return std::string(e.what()).find(text) != std::string::npos;
}

Network classifier_net() {
  return Network{Dense(6, 4), named("classifier", Network{Dense(4, 3), Dense(3, 2)})};
}

// A forward context with NaN/Inf checking on.
Context checking_finite() {
  Context ctx;
  ctx.check_finite = true;
  return ctx;
}

}  // namespace

BOOST_AUTO_TEST_CASE(wrong_input_rows_throw_shape_error_naming_the_layer) {
  const Network net = classifier_net();
  Rng rng(1);
  const auto params = net.init(Shape{6}, xavier_uniform(), rng);
  const arma::fmat x(5, 2, arma::fill::ones);
  BOOST_CHECK_EXCEPTION(net.forward(params, x), ShapeError, [](const ShapeError& e) {
    return mentions(e, "dense1: expected input (6), got (5)");
  });
}

BOOST_AUTO_TEST_CASE(mismatched_layers_are_caught_before_data_flows) {
  const Network net{Dense(6, 4), named("classifier", Network{Dense(5, 3), Dense(3, 2)})};
  Rng rng(1);
  BOOST_CHECK_EXCEPTION(net.init(Shape{6}, xavier_uniform(), rng), ShapeError,
                        [](const ShapeError& e) {
                          return e.path() == "classifier/dense1" &&
                                 mentions(e, "expected input (5), got (4)");
                        });
}

BOOST_AUTO_TEST_CASE(a_cache_handed_to_the_wrong_layer_throws_cache_error) {
  const Dense dense(6, 4);
  const Network net = classifier_net();
  Rng rng(1);
  const auto dense_params = dense.init(Shape{6}, xavier_uniform(), rng);
  const auto net_params = net.init(Shape{6}, xavier_uniform(), rng);
  const arma::fmat x(6, 3, arma::fill::randn);
  const auto dense_out = dense.forward(dense_params, x);
  const arma::fmat dy(2, 3, arma::fill::ones);
  BOOST_CHECK_EXCEPTION(net.backward(net_params, *dense_out.cache, dy), CacheError,
                        [](const CacheError& e) { return mentions(e, "dense cache"); });
}

BOOST_AUTO_TEST_CASE(a_float_forwards_cache_in_a_double_backward_says_the_element_types_may_be_mixed) {
  const Dense dense(6, 4);
  Rng rng(1);
  const auto params = dense.init(Shape{6}, xavier_uniform(), rng);
  const auto out = dense.forward(params, arma::fmat(6, 3, arma::fill::randn));
  const auto params_d = dense.init<double>(Shape{6}, xavier_uniform(), rng);
  BOOST_CHECK_EXCEPTION(dense.backward(params_d, *out.cache, arma::mat(4, 3, arma::fill::ones)),
                        CacheError, [](const CacheError& e) {
                          return mentions(e, "a dense layer was handed a dense cache of another "
                                             "element type (float and double mixed?)");
                        });
}

BOOST_AUTO_TEST_CASE(a_cache_from_another_dense_layer_throws_cache_error_with_path) {
  const Network net = classifier_net();
  const Network other{Dense(6, 4), named("classifier", Network{Dense(4, 5), Dense(5, 2)})};
  Rng rng(1);
  const auto params = net.init(Shape{6}, xavier_uniform(), rng);
  const auto other_params = other.init(Shape{6}, xavier_uniform(), rng);
  const arma::fmat x(6, 3, arma::fill::randn);
  const auto out = other.forward(other_params, x);
  const arma::fmat dy(2, 3, arma::fill::ones);
  BOOST_CHECK_EXCEPTION(net.backward(params, *out.cache, dy), CacheError,
                        [](const CacheError& e) { return e.path() == "classifier/dense2"; });
}

BOOST_AUTO_TEST_CASE(params_of_another_network_throw_with_the_tensor_path) {
  const Network net = classifier_net();
  const Network other{Dense(6, 4), named("classifier", Network{Dense(4, 7), Dense(7, 2)})};
  Rng rng(1);
  const auto other_params = other.init(Shape{6}, xavier_uniform(), rng);
  const arma::fmat x(6, 3, arma::fill::randn);
  BOOST_CHECK_EXCEPTION(net.forward(other_params, x), ShapeError, [](const ShapeError& e) {
    return e.path() == "classifier/dense1/weight" && mentions(e, "expected (3 × 4), got (7 × 4)");
  });
}

BOOST_AUTO_TEST_CASE(params_with_other_names_throw_config_error) {
  const Network net = classifier_net();
  const Network renamed{Dense(6, 4), named("head", Network{Dense(4, 3), Dense(3, 2)})};
  Rng rng(1);
  const auto params = renamed.init(Shape{6}, xavier_uniform(), rng);
  const arma::fmat x(6, 3, arma::fill::randn);
  BOOST_CHECK_EXCEPTION(net.forward(params, x), ConfigError, [](const ConfigError& e) {
    return mentions(e, "expected entries (dense1, classifier), found (dense1, head)");
  });
}

namespace {

// Expects forward, backward and infer of `net` on `params` each to throw ConfigError with
// the path (of the layer whose params hold the entry) and message given; `good` are the
// network's own params (backward gets the cache of a forward on them).
void expect_unexpected_entry(const Network& net, const TreeF& good, const TreeF& params,
                             const std::string& path, const std::string& message) {
  const arma::fmat x(6, 3, arma::fill::randn);
  const auto out = net.forward(good, x);
  const arma::fmat dy(2, 3, arma::fill::ones);
  const auto check = [&](const ConfigError& e) {
    BOOST_TEST(e.path() == path);
    BOOST_TEST(std::string(e.what()) == message);
    return true;
  };
  BOOST_CHECK_EXCEPTION(net.forward(params, x), ConfigError, check);
  BOOST_CHECK_EXCEPTION(net.backward(params, *out.cache, dy), ConfigError, check);
  BOOST_CHECK_EXCEPTION(net.infer(params, x), ConfigError, check);
}

}  // namespace

BOOST_AUTO_TEST_CASE(an_entry_no_layer_declares_throws_config_error_naming_it_and_its_layer) {
  const Network net = classifier_net();
  Rng rng(1);
  const TreeF good = net.init(Shape{6}, xavier_uniform(), rng);
  const TreeF extra(arma::fmat(2, 2, arma::fill::ones));

  TreeF in_a_layer = good;
  in_a_layer.at("dense1").add("extra", extra);
  expect_unexpected_entry(net, good, in_a_layer, "dense1",
                          "dense1: unexpected entry 'extra' in the params (the dense layer's "
                          "params are weight, bias)");

  TreeF in_a_nested_layer = good;
  in_a_nested_layer.at("classifier/dense2").add("extra", extra);
  expect_unexpected_entry(net, good, in_a_nested_layer, "classifier/dense2",
                          "classifier/dense2: unexpected entry 'extra' in the params (the dense "
                          "layer's params are weight, bias)");

  TreeF in_a_nested_network = good;
  in_a_nested_network.at("classifier").add("dense9", TreeF());
  expect_unexpected_entry(net, good, in_a_nested_network, "classifier",
                          "classifier: unexpected entry 'dense9' in the params (the network's "
                          "layers are dense1, dense2)");

  TreeF in_the_network = good;
  in_the_network.add("dense9", TreeF());
  expect_unexpected_entry(net, good, in_the_network, "",
                          "unexpected entry 'dense9' in the params (the network's layers are "
                          "dense1, classifier)");
}

BOOST_AUTO_TEST_CASE(an_entry_under_a_layer_without_params_throws_config_error) {
  const Network net{Dense(6, 4), ReLU(), Dense(4, 2)};
  Rng rng(1);
  const TreeF good = net.init(Shape{6}, xavier_uniform(), rng);
  for (const TreeF& entry : {TreeF(arma::fmat(2, 2, arma::fill::ones)), TreeF()}) {
    TreeF params = good;
    params.at("relu1").add("extra", entry);
    expect_unexpected_entry(net, good, params, "relu1",
                            "relu1: unexpected entry 'extra' in the params (the relu layer has no "
                            "params)");
  }
}

BOOST_AUTO_TEST_CASE(an_entry_no_layer_declares_in_the_state_throws_config_error) {
  const Network net = classifier_net();
  Rng rng(1);
  const TreeF params = net.init(Shape{6}, xavier_uniform(), rng);
  TreeF state = net.init_state(Shape{6});
  state.at("classifier/dense1").add("extra", TreeF(arma::fmat(2, 2, arma::fill::ones)));
  const arma::fmat x(6, 3, arma::fill::randn);
  const std::string message =
      "classifier/dense1: unexpected entry 'extra' in the state (the dense layer has no state)";
  BOOST_CHECK_EXCEPTION(net.forward(params, x, Shape{6}, Context{}, state), ConfigError,
                        [&](const ConfigError& e) { return std::string(e.what()) == message; });
  BOOST_CHECK_EXCEPTION(net.infer(params, x, Shape{6}, state), ConfigError,
                        [&](const ConfigError& e) { return std::string(e.what()) == message; });
}

BOOST_AUTO_TEST_CASE(nan_input_with_checking_on_throws_numeric_error_naming_the_layer) {
  const Network net = classifier_net();
  Rng rng(1);
  const auto params = net.init(Shape{6}, xavier_uniform(), rng);
  arma::fmat x(6, 3, arma::fill::randn);
  x(2, 1) = arma::datum::nan;
  Context ctx;
  ctx.check_finite = true;
  BOOST_CHECK_EXCEPTION(net.forward(params, x, ctx), NumericError,
                        [](const NumericError& e) { return e.path() == "dense1"; });
  ctx.check_finite = false;
  BOOST_CHECK_NO_THROW(net.forward(params, x, ctx));
}

BOOST_AUTO_TEST_CASE(nan_appearing_inside_a_nested_network_names_the_layer_that_made_it) {
  const Network net = classifier_net();
  Rng rng(1);
  auto params = net.init(Shape{6}, xavier_uniform(), rng);
  params.at("classifier/dense2/bias").value()(0, 0) = arma::datum::inf;
  const arma::fmat x(6, 3, arma::fill::randn);
  Context ctx;
  ctx.check_finite = true;
  BOOST_CHECK_EXCEPTION(net.forward(params, x, ctx), NumericError,
                        [](const NumericError& e) { return e.path() == "classifier/dense2"; });
}

BOOST_AUTO_TEST_CASE(nan_made_by_a_layer_before_the_last_names_that_layer_not_the_next) {
  const Network net = classifier_net();
  Rng rng(1);
  const arma::fmat x(6, 3, arma::fill::randn);
  for (const std::string path : {"dense1", "classifier/dense1"}) {
    auto params = net.init(Shape{6}, xavier_uniform(), rng);
    params.at(path + "/bias").value()(0, 0) = arma::datum::nan;
    BOOST_CHECK_EXCEPTION(net.forward(params, x, checking_finite()), NumericError,
                          [&](const NumericError& e) {
                            return std::string(e.what()) ==
                                   path + ": output contains NaN or Inf";
                          });
  }
}

BOOST_AUTO_TEST_CASE(nan_input_of_a_nested_first_network_names_its_innermost_first_layer) {
  const Network net{named("encoder", Network{named("block", Network{Dense(6, 4)}), ReLU()}),
                    Dense(4, 2)};
  Rng rng(1);
  const auto params = net.init(Shape{6}, xavier_uniform(), rng);
  arma::fmat x(6, 3, arma::fill::randn);
  x(5, 2) = arma::datum::inf;
  BOOST_CHECK_EXCEPTION(net.forward(params, x, checking_finite()), NumericError,
                        [](const NumericError& e) {
                          return std::string(e.what()) ==
                                 "encoder/block/dense1: input contains NaN or Inf";
                        });
}

BOOST_AUTO_TEST_CASE(duplicate_layer_names_are_rejected) {
  BOOST_CHECK_THROW((Network{named("a", Dense(2, 2)), named("a", Dense(2, 2))}), ConfigError);
}

BOOST_AUTO_TEST_CASE(a_shape_whose_size_would_wrap_around_throws_shape_error) {
  // (1, 2³², 2³²) has 2⁶⁴ values: its size wrapped to 0 and matched an empty batch.
  const std::size_t big = std::size_t(1) << 32;
  // Sizes are held to the largest ptrdiff_t (layercache/sizes.hpp), 2⁶³ − 1.
  BOOST_CHECK_EXCEPTION((Shape{1, big, big}), ShapeError, [](const ShapeError& e) {
    return mentions(e, "values of the shape (1, 4294967296, 4294967296)") &&
           mentions(e, "exceeds the largest size 9223372036854775807");
  });
  BOOST_CHECK_THROW((Shape{1, big, big / 2}), ShapeError);  // 2⁶³ values: one too many
  BOOST_TEST((Shape{1, big, big / 2 - 1}).size() == (std::size_t(1) << 63) - big);
}
