// Specification of Dense: y = W x + b, its gradients by hand, the bias option and the tensors it
// declares (the shared checks run on its rows in test_layers.cpp).
#include <boost/test/unit_test.hpp>

#include "layercache/layercache.hpp"
#include "layercache/testing_boost.hpp"
#include "layer_test_support.hpp"

using namespace layercache;
using namespace layer_tests;

namespace {

// W = [1 2; 3 4; 5 6] (3 × 2), b = (0.5, -1, 2).
Tree<double> small_params() {
  Tree<double> p;
  p.add("weight", Tree<double>(arma::mat{{1, 2}, {3, 4}, {5, 6}}));
  p.add("bias", Tree<double>(arma::mat(arma::vec{0.5, -1, 2})));
  return p;
}

}  // namespace

BOOST_AUTO_TEST_CASE(dense_forward_is_w_x_plus_b_per_column) {
  const arma::mat x{{1, 0}, {-1, 2}};  // two samples: (1, -1) and (0, 2)
  const auto out = Dense(2, 3).forward(small_params(), x);
  // column 0: W (1, -1) + b = (-1, -1, -1) + (0.5, -1, 2);  column 1: W (0, 2) + b = (4, 8, 12) + b
  const arma::mat expected{{-0.5, 4.5}, {-2, 7}, {1, 14}};
  BOOST_TEST(arma::approx_equal(out.y(), expected, "absdiff", 1e-12));
}

BOOST_AUTO_TEST_CASE(dense_backward_gives_dy_xt_row_sums_and_wt_dy) {
  const Dense dense(2, 3);
  const arma::mat x{{1, 0}, {-1, 2}};
  const arma::mat dy{{1, 0}, {0, 1}, {1, 1}};
  const auto out = dense.forward(small_params(), x);
  const auto back = dense.backward(small_params(), *out.cache, dy);
  BOOST_TEST(arma::approx_equal(back.grads.at("weight").value(), arma::mat(dy * x.t()), "absdiff", 1e-12));
  BOOST_TEST(arma::approx_equal(back.grads.at("bias").value(), arma::mat(arma::vec{1, 1, 2}), "absdiff", 1e-12));
  // dx = Wᵀ dy: column 0 = (1+5, 2+6), column 1 = (3+5, 4+6)
  BOOST_TEST(arma::approx_equal(back.dx, arma::mat{{6, 8}, {8, 10}}, "absdiff", 1e-12));
}

BOOST_AUTO_TEST_CASE(dense_without_bias_declares_only_a_weight) {
  Rng rng(1);
  const auto with = Dense(4, 3).init(Shape{4}, he_normal(), rng);
  const auto without = Dense(4, 3, {.bias = false}).init(Shape{4}, he_normal(), rng);
  BOOST_TEST(with.paths() == (std::vector<std::string>{"weight", "bias"}));
  BOOST_TEST(without.paths() == (std::vector<std::string>{"weight"}));
  BOOST_TEST(with.at("weight").value().n_rows == 3u);
  BOOST_TEST(with.at("weight").value().n_cols == 4u);
}

BOOST_AUTO_TEST_CASE(dense_declares_its_fans_for_initializers) {
  const auto specs = Dense(784, 256).param_specs(Shape{784});
  BOOST_TEST(specs.size() == 2u);
  BOOST_TEST(specs[0].fan_in == 784u);
  BOOST_TEST(specs[0].fan_out == 256u);
  BOOST_TEST((specs[1].role == Role::bias));
}

BOOST_AUTO_TEST_CASE(dense_rejects_zero_sizes_and_wrong_inputs) {
  BOOST_CHECK_THROW(Dense(0, 3), ConfigError);
  BOOST_TEST(contains(shape_error_of([] { Dense(4, 3).output_shape(Shape{5}); }),
                      "expected input (4), got (5)"));
  const Dense dense(2, 3);
  const auto out = dense.forward(small_params(), arma::mat(2, 2, arma::fill::ones));
  const std::string dy_error =
      shape_error_of([&] { dense.backward(small_params(), *out.cache, arma::mat(3, 5)); });
  BOOST_TEST(contains(dy_error, "expected dy (3 × 2)"), dy_error);
  BOOST_TEST(contains(dy_error, "got (3 × 5)"), dy_error);
}

// Before, Armadillo's std::logic_error escaped init: a weight of 2^80 values wraps a size_t.
BOOST_AUTO_TEST_CASE(dense_refuses_a_weight_whose_size_overflows) {
  const std::string e = error_of<ConfigError>([] {
    Rng rng(1);
    Dense(std::size_t(1) << 40, std::size_t(1) << 40).init<float>(Shape{std::size_t(1) << 40},
                                                                   xavier_uniform(), rng);
  });
  BOOST_TEST(contains(e, "1099511627776 × 1099511627776"), e);
}

// An allocation that cannot succeed is a ConfigError naming the tensor, before any memory is
// touched: 2^40 values (4 TiB of float) are more than this machine has.
BOOST_AUTO_TEST_CASE(dense_init_refuses_a_weight_larger_than_memory) {
  const Dense dense(std::size_t(1) << 20, std::size_t(1) << 20);
  Rng rng(1);
  try {
    dense.init<float>(Shape{std::size_t(1) << 20}, xavier_uniform(), rng);
    BOOST_ERROR("expected a ConfigError");
  } catch (const ConfigError& e) {
    BOOST_TEST(e.path() == "weight");
    BOOST_TEST(contains(e.what(), "1048576 × 1048576"), e.what());
  }
}
