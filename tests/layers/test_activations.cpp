// Specification of the element-wise activations (ReLU, LeakyReLU, ELU, GELU, Sigmoid,
// Tanh, SiLU, Softplus, SELU, Hardswish, Mish): values at chosen points, what their caches
// hold, and their gradients.
#include <boost/test/unit_test.hpp>

#include "layercache/layercache.hpp"
#include "layercache/testing_boost.hpp"
#include "layer_test_support.hpp"

using namespace layercache;
using namespace layer_tests;

// ----- values at chosen points ------------------------------------------------------------

BOOST_AUTO_TEST_CASE(relu_zeroes_negative_inputs_and_passes_positive_ones) {
  BOOST_TEST(at(ReLU(), -1.0) == 0.0);
  BOOST_TEST(at(ReLU(), 0.0) == 0.0);
  BOOST_TEST(at(ReLU(), 2.5) == 2.5);
}

BOOST_AUTO_TEST_CASE(leaky_relu_scales_negative_inputs_by_its_slope) {
  BOOST_TEST(at(LeakyReLU(), -1.0) == -0.01);
  BOOST_TEST(at(LeakyReLU({.slope = 0.2}), -5.0) == -1.0, boost::test_tools::tolerance(1e-15));
  BOOST_TEST(at(LeakyReLU({.slope = 0.2}), 3.0) == 3.0);
  BOOST_TEST(LeakyReLU().slope() == 0.01);
}

BOOST_AUTO_TEST_CASE(leaky_relu_rejects_a_negative_slope_quoting_it_as_given) {
  BOOST_CHECK_EXCEPTION(LeakyReLU({.slope = -0.1}), ConfigError, [](const ConfigError& e) {
    return std::string(e.what()).find("got -0.1 (") != std::string::npos;  // not -0.100000
  });
  BOOST_CHECK_THROW(LeakyReLU({.slope = std::nan("")}), ConfigError);
  BOOST_CHECK_NO_THROW(LeakyReLU({.slope = 0.0}));
}

BOOST_AUTO_TEST_CASE(elu_saturates_at_minus_alpha) {
  const ELU elu({.alpha = 2.0});
  BOOST_TEST(at(elu, -inf) == -2.0);
  BOOST_TEST(at(elu, -50.0) == -2.0, boost::test_tools::tolerance(1e-15));
  BOOST_TEST(at(elu, -1.0) == 2.0 * std::expm1(-1.0));
  BOOST_TEST(at(elu, 1.5) == 1.5);
  BOOST_TEST(at(ELU(), -inf) == -1.0);
}

BOOST_AUTO_TEST_CASE(elu_rejects_an_alpha_that_is_not_positive) {
  BOOST_CHECK_THROW(ELU({.alpha = 0.0}), ConfigError);
  BOOST_CHECK_THROW(ELU({.alpha = -1.0}), ConfigError);
}

BOOST_AUTO_TEST_CASE(gelu_is_x_times_the_normal_distribution_function) {
  namespace tt = boost::test_tools;
  BOOST_TEST(at(GELU(), 0.0) == 0.0);
  BOOST_TEST(at(GELU(), 1.0) == 0.8413447460685429, tt::tolerance(1e-14));
  BOOST_TEST(at(GELU(), -1.0) == -0.15865525393145707, tt::tolerance(1e-14));
  BOOST_TEST(at(GELU(), 3.0) == 2.99595030590511, tt::tolerance(1e-14));
  BOOST_TEST(at(GELU(), -3.0) == -0.004049694094890287, tt::tolerance(1e-13));
  const double far = at(GELU(), -30.0);  // −30·Φ(−30) ≈ −1.5e-196: tiny, negative, finite
  BOOST_TEST((far < 0.0 && far > -1e-190));
}

BOOST_AUTO_TEST_CASE(gelu_tanh_approximation_follows_its_formula_and_stays_close_to_exact) {
  namespace tt = boost::test_tools;
  const GELU approx({.tanh_approximation = true});
  BOOST_TEST(approx.tanh_approximation());
  BOOST_TEST(at(approx, 1.0) == 0.8411919906082768, tt::tolerance(1e-14));
  BOOST_TEST(at(approx, -1.0) == -0.15880800939172324, tt::tolerance(1e-14));
  const arma::vec x = arma::linspace(-6.0, 6.0, 241);
  BOOST_TEST(arma::abs(apply(approx, x) - apply(GELU(), x)).max() < 1e-3);
}

BOOST_AUTO_TEST_CASE(sigmoid_is_one_half_at_zero_and_finite_far_out) {
  BOOST_TEST(at(Sigmoid(), 0.0) == 0.5);
  BOOST_TEST(at(Sigmoid(), 2.0) == 0.8807970779778823, boost::test_tools::tolerance(1e-15));
  BOOST_TEST(at(Sigmoid(), -1000.0) == 0.0);
  BOOST_TEST(at(Sigmoid(), 1000.0) == 1.0);
}

BOOST_AUTO_TEST_CASE(tanh_matches_the_standard_library) {
  BOOST_TEST(at(Tanh(), 0.0) == 0.0);
  BOOST_TEST(at(Tanh(), 0.5) == std::tanh(0.5));
  BOOST_TEST(at(Tanh(), -inf) == -1.0);
}

template <class T>

void check_output_keeping_cache() {
  const arma::Mat<T> x = arma::conv_to<arma::Mat<T>>::from(random_batch(6, 5, 17));
  const auto out = Tanh().forward(Tree<T>{}, x);
  const auto& cache = dynamic_cast<const OneTensorCache<T>&>(*out.cache);
  BOOST_TEST(cache.kept.get() == out.output.get());  // the output itself, not a copy
  BOOST_TEST(out.cache->bytes() == 6u * 5u * sizeof(T));
}

BOOST_AUTO_TEST_CASE(tanh_cache_holds_exactly_its_output) {
  check_output_keeping_cache<float>();
  check_output_keeping_cache<double>();
}

BOOST_AUTO_TEST_CASE(gelu_cache_holds_exactly_its_input) {
  const auto x = std::make_shared<const arma::mat>(random_batch(6, 5, 10));
  ForwardResult<double> out;
  GELU().forward_into(Tree<double>{}, Tree<double>{}, x, Shape{6}, {}, out);
  const auto& cache = dynamic_cast<const OneTensorCache<double>&>(*out.cache);
  BOOST_TEST(cache.kept.get() == x.get());  // the input buffer itself
  BOOST_TEST(out.cache->bytes() == 6u * 5u * sizeof(double));
}

// A cache records the hyper-parameter its backward formula needs; a layer with another value
// rejects it instead of computing a wrong gradient.
template <class L>
void check_cache_of_another_setting_is_rejected(const L& made_by, const L& used_by,
                                                const std::string& expected) {
  const arma::mat x = random_batch(3, 4, 12);
  const auto out = made_by.forward(Tree<double>{}, x);
  const arma::mat dy(3, 4, arma::fill::ones);
  BOOST_CHECK_NO_THROW(made_by.backward(Tree<double>{}, *out.cache, dy));
  BOOST_CHECK_EXCEPTION(used_by.backward(Tree<double>{}, *out.cache, dy), CacheError,
                        [&](const CacheError& e) {
                          return std::string(e.what()).find(expected) != std::string::npos;
                        });
}

BOOST_AUTO_TEST_CASE(a_cache_made_with_another_hyper_parameter_throws_cache_error) {
  check_cache_of_another_setting_is_rejected(LeakyReLU({.slope = 0.2}), LeakyReLU(),
                                             "made with slope = 0.2");
  check_cache_of_another_setting_is_rejected(ELU({.alpha = 2.0}), ELU(), "made with alpha = 2");
  check_cache_of_another_setting_is_rejected(GELU({.tanh_approximation = true}), GELU(),
                                             "made with tanh_approximation = 1");
}

// Network{Dense(4, 8), ReLU(), Dense(8, 2)} keeps the network input (4 × batch) for dense1,
// and one (8 × batch) buffer that is both the ReLU's output and dense2's input.
template <class T>

void check_relu_output_stored_once() {
  const Network net{Dense(4, 8), ReLU(), Dense(8, 2)};
  Rng rng(3);
  const auto params = net.init<T>(Shape{4}, xavier_uniform(), rng);
  const std::size_t batch = 5;
  const arma::Mat<T> x = arma::conv_to<arma::Mat<T>>::from(random_batch(4, batch, 18));
  const auto out = net.forward(params, x);
  BOOST_TEST(out.cache->bytes() == (4 + 8) * batch * sizeof(T));
  const auto& steps = dynamic_cast<const NetworkCache<T>&>(*out.cache).steps;
  const auto& relu = dynamic_cast<const OneTensorCache<T>&>(*steps[1].cache);
  const auto& dense2 = dynamic_cast<const DenseCache<T>&>(*steps[2].cache);
  BOOST_TEST(relu.kept.get() == dense2.x.get());
}

BOOST_AUTO_TEST_CASE(relu_output_is_stored_once_between_two_dense_layers) {
  check_relu_output_stored_once<float>();
  check_relu_output_stored_once<double>();
}

BOOST_AUTO_TEST_CASE(gelu_input_is_the_previous_layers_output_not_a_copy) {
  const Network net{Dense(4, 8), GELU(), Dense(8, 2)};
  Rng rng(4);
  const auto params = net.init<double>(Shape{4}, xavier_uniform(), rng);
  const std::size_t batch = 3;
  const auto out = net.forward(params, random_batch(4, batch, 13));
  const auto& steps = dynamic_cast<const NetworkCache<double>&>(*out.cache).steps;
  BOOST_TEST(dynamic_cast<const OneTensorCache<double>&>(*steps[1].cache).kept.get() ==
             steps[0].output.get());
  // dense1 keeps the input (4), GELU keeps dense1's output (8), dense2 keeps GELU's output (8).
  BOOST_TEST(out.cache->bytes() == (4 + 8 + 8) * batch * sizeof(double));
}

// ----- backward ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(relu_and_leaky_relu_gradients_follow_the_sign_of_the_input) {
  const arma::vec x{-2.0, -0.5, 0.5, 2.0};
  const arma::vec dy{1.0, 2.0, 3.0, 4.0};
  const auto relu = ReLU().forward(Tree<double>{}, arma::mat(x));
  BOOST_TEST(arma::approx_equal(ReLU().backward(Tree<double>{}, *relu.cache, arma::mat(dy)).dx,
                                arma::mat(arma::vec{0.0, 0.0, 3.0, 4.0}), "absdiff", 0.0));
  const LeakyReLU leaky({.slope = 0.25});
  const auto lr = leaky.forward(Tree<double>{}, arma::mat(x));
  BOOST_TEST(arma::approx_equal(leaky.backward(Tree<double>{}, *lr.cache, arma::mat(dy)).dx,
                                arma::mat(arma::vec{0.25, 0.5, 3.0, 4.0}), "absdiff", 0.0));
}

namespace {

// The input gradient of `layer` at x for dy = 1 (one sample of one value).
double slope_at(const Layer& layer, double x) {
  const auto out = layer.forward(Tree<double>{}, arma::mat{x});
  return layer.backward(Tree<double>{}, *out.cache, arma::mat{1.0}).dx(0);
}

}  // namespace

BOOST_AUTO_TEST_CASE(silu_is_x_times_its_sigmoid) {
  BOOST_TEST(at(SiLU(), 0.0) == 0.0);
  BOOST_TEST(at(SiLU(), 1.0) == 0.7310585786300049, boost::test_tools::tolerance(1e-15));
  BOOST_TEST(at(Swish(), -1.0) == -0.2689414213699951, boost::test_tools::tolerance(1e-15));
  BOOST_TEST(at(SiLU(), -800.0) == 0.0);  // no overflow far out
  BOOST_TEST(slope_at(SiLU(), 0.0) == 0.5);
}

BOOST_AUTO_TEST_CASE(softplus_is_a_smooth_relu_without_overflow) {
  BOOST_TEST(at(Softplus(), 0.0) == 0.6931471805599453, boost::test_tools::tolerance(1e-15));
  BOOST_TEST(at(Softplus(), -40.0) == 4.248354255291589e-18, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(at(Softplus(), 1000.0) == 1000.0);
  BOOST_TEST(slope_at(Softplus(), 0.0) == 0.5);
}

BOOST_AUTO_TEST_CASE(selu_scales_and_saturates_with_its_fixed_constants) {
  BOOST_TEST(at(SELU(), 1.0) == 1.0507009873554805, boost::test_tools::tolerance(1e-15));
  BOOST_TEST(at(SELU(), -1.0) == -1.1113307378125625, boost::test_tools::tolerance(1e-14));
  BOOST_TEST(slope_at(SELU(), 2.0) == SELU::scale);
  // λ·α·e⁻¹
  BOOST_TEST(slope_at(SELU(), -1.0) == 0.646768603034814, boost::test_tools::tolerance(1e-14));
}

BOOST_AUTO_TEST_CASE(hardswish_is_piecewise_quadratic) {
  BOOST_TEST(at(Hardswish(), -4.0) == 0.0);
  BOOST_TEST(at(Hardswish(), -1.0) == -1.0 / 3, boost::test_tools::tolerance(1e-15));
  BOOST_TEST(at(Hardswish(), 1.0) == 2.0 / 3, boost::test_tools::tolerance(1e-15));
  BOOST_TEST(at(Hardswish(), 4.0) == 4.0);
  BOOST_TEST(slope_at(Hardswish(), -4.0) == 0.0);
  BOOST_TEST(slope_at(Hardswish(), 1.0) == 5.0 / 6, boost::test_tools::tolerance(1e-15));
  BOOST_TEST(slope_at(Hardswish(), 4.0) == 1.0);
}

BOOST_AUTO_TEST_CASE(mish_is_x_times_tanh_of_softplus) {
  BOOST_TEST(at(Mish(), 0.0) == 0.0);
  BOOST_TEST(at(Mish(), 1.0) == 0.8650983882673103, boost::test_tools::tolerance(1e-15));
  BOOST_TEST(at(Mish(), -1.0) == -0.30340146137410895, boost::test_tools::tolerance(1e-14));
  BOOST_TEST(slope_at(Mish(), 0.0) == 0.6, boost::test_tools::tolerance(1e-15));  // tanh(log 2)
}
