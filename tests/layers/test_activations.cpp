// Specification of the activation layers: values at chosen points, what their caches hold,
// and how they reject foreign caches and misshapen gradients.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "layercache/layercache.hpp"

using namespace layercache;

namespace {

constexpr double inf = std::numeric_limits<double>::infinity();

// The layer applied to a column of values (one sample); checks forward against infer.
arma::vec apply(const Layer& layer, const arma::vec& x) {
  const arma::mat y = layer.forward(Tree<double>{}, arma::mat(x)).y();
  const arma::mat inferred = layer.infer(Tree<double>{}, arma::mat(x));
  bool same = y.n_elem == inferred.n_elem;
  for (arma::uword i = 0; same && i < y.n_elem; ++i)
    same = y(i) == inferred(i) || (std::isnan(y(i)) && std::isnan(inferred(i)));
  BOOST_TEST(same, "infer differs from forward");
  return arma::vec(y);
}

// The layer's value at one point.
double at(const Layer& layer, double x) { return apply(layer, arma::vec{x})(0); }

// Every parameter-free layer of this area, with its kind.
std::vector<AnyLayer> activations() {
  return {ReLU(), LeakyReLU(), ELU(), GELU(), GELU({.tanh_approximation = true}),
          Sigmoid(), Tanh(), Softmax(), LogSoftmax(), Identity()};
}

arma::mat random_batch(arma::uword rows, arma::uword cols, std::uint64_t seed) {
  Rng rng(seed);
  arma::mat x(rows, cols);
  for (double& v : x) v = rng.normal(0.0, 2.0);
  return x;
}

}  // namespace

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

BOOST_AUTO_TEST_CASE(leaky_relu_rejects_a_negative_slope) {
  BOOST_CHECK_THROW(LeakyReLU({.slope = -0.1}), ConfigError);
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

BOOST_AUTO_TEST_CASE(identity_returns_its_input) {
  const arma::mat x = random_batch(3, 4, 1);
  BOOST_TEST(arma::approx_equal(Identity().forward(Tree<double>{}, x).y(), x, "absdiff", 0.0));
  BOOST_TEST(arma::approx_equal(Identity().infer(Tree<double>{}, x), x, "absdiff", 0.0));
}

BOOST_AUTO_TEST_CASE(softmax_columns_are_probabilities) {
  const arma::mat y = Softmax().forward(Tree<double>{}, random_batch(7, 5, 2)).y();
  BOOST_TEST(y.min() > 0.0);
  for (arma::uword j = 0; j < y.n_cols; ++j)
    BOOST_TEST(arma::accu(y.col(j)) == 1.0, boost::test_tools::tolerance(1e-14));
}

BOOST_AUTO_TEST_CASE(softmax_treats_each_column_on_its_own_and_ignores_a_shift) {
  arma::mat x = random_batch(4, 3, 3);
  const arma::mat y = Softmax().forward(Tree<double>{}, x).y();
  x.col(1) += 100.0;  // shifting one sample changes nothing anywhere
  const arma::mat shifted = Softmax().forward(Tree<double>{}, x).y();
  BOOST_TEST(arma::approx_equal(y, shifted, "absdiff", 1e-14));
}

BOOST_AUTO_TEST_CASE(softmax_of_huge_logits_is_finite) {
  const arma::vec y = apply(Softmax(), arma::vec{1000.0, 0.0});
  BOOST_TEST(y(0) == 1.0);
  BOOST_TEST(y(1) == 0.0);
  const arma::vec tie = apply(Softmax(), arma::vec{1000.0, 1000.0});
  BOOST_TEST(tie(0) == 0.5);
  BOOST_TEST(tie(1) == 0.5);
  const arma::fmat yf = Softmax().forward(Tree<float>{}, arma::fmat(arma::fvec{1000.0f, 0.0f})).y();
  BOOST_TEST(yf.is_finite());
}

BOOST_AUTO_TEST_CASE(log_softmax_is_stable_for_huge_logits) {
  const arma::vec y = apply(LogSoftmax(), arma::vec{1000.0, 0.0});
  BOOST_TEST(y(0) == 0.0);
  BOOST_TEST(y(1) == -1000.0);  // not −inf: the log of a softmax that rounds to 0 is never taken
  const arma::fmat logits(arma::fvec{1000.0f, 0.0f});
  const arma::fmat yf = LogSoftmax().forward(Tree<float>{}, logits).y();
  BOOST_TEST(yf(1, 0) == -1000.0f);
}

BOOST_AUTO_TEST_CASE(log_softmax_is_the_log_of_softmax) {
  const arma::mat x = random_batch(6, 4, 4);
  const arma::mat log_p = LogSoftmax().forward(Tree<double>{}, x).y();
  const arma::mat p = Softmax().forward(Tree<double>{}, x).y();
  BOOST_TEST(arma::approx_equal(arma::exp(log_p), p, "absdiff", 1e-15));
}

BOOST_AUTO_TEST_CASE(a_nan_input_gives_a_nan_output_rather_than_being_hidden) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (const auto& layer : activations()) {
    BOOST_TEST_CONTEXT(layer->kind()) {
      const arma::vec y = apply(*layer, arma::vec{nan, 1.0});
      BOOST_TEST(std::isnan(y(0)));
    }
  }
}

// ----- shapes -----------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(activations_accept_any_shape_and_keep_it) {
  const Shape image{3, 4, 5};
  for (const auto& layer : activations()) {
    BOOST_TEST_CONTEXT(layer->kind()) {
      BOOST_TEST((layer->output_shape(image) == image));
      const auto out = layer->forward(Tree<double>{}, random_batch(60, 2, 5), image);
      BOOST_TEST((out.shape == image));
      BOOST_TEST(out.y().n_rows == 60u);
      BOOST_TEST(out.y().n_cols == 2u);
    }
  }
}

BOOST_AUTO_TEST_CASE(activations_reject_rows_that_contradict_the_given_shape) {
  const auto x = std::make_shared<const arma::mat>(random_batch(5, 3, 6));
  for (const auto& layer : activations()) {
    BOOST_TEST_CONTEXT(layer->kind()) {
      ForwardResult<double> out;
      arma::mat y;
      BOOST_CHECK_THROW(layer->forward_into(Tree<double>{}, Tree<double>{}, x, Shape{4}, {}, out),
                        ShapeError);
      BOOST_CHECK_THROW(layer->infer_into(Tree<double>{}, Tree<double>{}, *x, Shape{2, 2}, y),
                        ShapeError);
    }
  }
}

BOOST_AUTO_TEST_CASE(a_dy_of_the_wrong_shape_throws_shape_error) {
  const arma::mat x = random_batch(5, 3, 7);
  for (const auto& layer : activations()) {
    BOOST_TEST_CONTEXT(layer->kind()) {
      const auto out = layer->forward(Tree<double>{}, x);
      BOOST_CHECK_THROW(layer->backward(Tree<double>{}, *out.cache, arma::mat(5, 2)), ShapeError);
      BOOST_CHECK_THROW(layer->backward(Tree<double>{}, *out.cache, arma::mat(4, 3)), ShapeError);
      BOOST_CHECK_NO_THROW(layer->backward(Tree<double>{}, *out.cache, arma::mat(5, 3)));
    }
  }
}

BOOST_AUTO_TEST_CASE(a_wrong_dy_inside_a_network_names_the_layer_and_both_shapes) {
  const Network net{Dense(4, 5), Tanh()};
  Rng rng(1);
  const auto params = net.init<double>(Shape{4}, xavier_uniform(), rng);
  const auto out = net.forward(params, random_batch(4, 3, 8));
  try {
    net.backward(params, *out.cache, arma::mat(5, 2, arma::fill::zeros));
    BOOST_FAIL("no ShapeError");
  } catch (const ShapeError& e) {
    BOOST_TEST(e.path() == "tanh1");
    BOOST_TEST(std::string(e.what()).find("expected dy (5 × 3)") != std::string::npos, e.what());
    BOOST_TEST(std::string(e.what()).find("got (5 × 2)") != std::string::npos, e.what());
  }
}

// ----- caches -----------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_cache_handed_to_another_layer_throws_cache_error) {
  const arma::mat x = random_batch(4, 2, 9);
  const Dense dense(4, 4);
  Rng rng(2);
  const auto dense_params = dense.init<double>(Shape{4}, xavier_uniform(), rng);
  const auto dense_out = dense.forward(dense_params, x);
  const auto layers = activations();
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const auto out = layers[i]->forward(Tree<double>{}, x);
    for (std::size_t j = 0; j < layers.size(); ++j) {
      if (layers[j]->kind() == layers[i]->kind()) continue;  // GELU and its tanh variant
      BOOST_TEST_CONTEXT(layers[i]->kind() << " cache to " << layers[j]->kind()) {
        BOOST_CHECK_THROW(layers[j]->backward(Tree<double>{}, *out.cache, x), CacheError);
      }
    }
    BOOST_TEST_CONTEXT(layers[i]->kind() << " and dense") {
      BOOST_CHECK_THROW(dense.backward(dense_params, *out.cache, x), CacheError);
      BOOST_CHECK_THROW(layers[i]->backward(Tree<double>{}, *dense_out.cache, x), CacheError);
    }
  }
}

BOOST_AUTO_TEST_CASE(a_float_cache_handed_to_a_double_backward_throws_cache_error) {
  const auto out = Tanh().forward(Tree<float>{}, arma::fmat(3, 2, arma::fill::ones));
  BOOST_CHECK_THROW(Tanh().backward(Tree<double>{}, *out.cache, arma::mat(3, 2)), CacheError);
}

BOOST_AUTO_TEST_CASE(an_empty_cache_throws_cache_error) {
  BOOST_CHECK_THROW(Tanh().backward(Tree<double>{}, TanhCache<double>{}, arma::mat(3, 2)),
                    CacheError);
  BOOST_CHECK_THROW(GELU().backward(Tree<double>{}, GELUCache<double>{}, arma::mat(3, 2)),
                    CacheError);
}

template <class T>
void check_output_keeping_cache() {
  const arma::Mat<T> x = arma::conv_to<arma::Mat<T>>::from(random_batch(6, 5, 17));
  const auto out = Tanh().forward(Tree<T>{}, x);
  const auto& cache = dynamic_cast<const TanhCache<T>&>(*out.cache);
  BOOST_TEST(cache.y.get() == out.output.get());  // the output itself, not a copy
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
  const auto& cache = dynamic_cast<const GELUCache<double>&>(*out.cache);
  BOOST_TEST(cache.x.get() == x.get());  // the input buffer itself
  BOOST_TEST(out.cache->bytes() == 6u * 5u * sizeof(double));
}

BOOST_AUTO_TEST_CASE(identity_aliases_its_input_and_keeps_no_bytes) {
  const auto x = std::make_shared<const arma::mat>(random_batch(3, 2, 11));
  ForwardResult<double> out;
  Identity().forward_into(Tree<double>{}, Tree<double>{}, x, Shape{3}, {}, out);
  BOOST_TEST(out.output.get() == x.get());
  BOOST_TEST(out.cache->bytes() == 0u);
  const arma::mat dy = random_batch(3, 2, 12);
  const auto grads = Identity().backward(Tree<double>{}, *out.cache, dy);
  BOOST_TEST(arma::approx_equal(grads.dx, dy, "absdiff", 0.0));
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
  const auto& relu = dynamic_cast<const ReLUCache<T>&>(*steps[1].cache);
  const auto& dense2 = dynamic_cast<const DenseCache<T>&>(*steps[2].cache);
  BOOST_TEST(relu.y.get() == dense2.x.get());
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
  BOOST_TEST(dynamic_cast<const GELUCache<double>&>(*steps[1].cache).x.get() ==
             steps[0].output.get());
  // dense1 keeps the input (4), GELU keeps dense1's output (8), dense2 keeps GELU's output (8).
  BOOST_TEST(out.cache->bytes() == (4 + 8 + 8) * batch * sizeof(double));
}

// ----- backward ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(backward_skips_dx_when_the_input_gradient_is_not_needed) {
  const arma::mat x = random_batch(5, 3, 14);
  for (const auto& layer : activations()) {
    BOOST_TEST_CONTEXT(layer->kind()) {
      const auto out = layer->forward(Tree<double>{}, x);
      BackwardResult<double> grads;
      grads.dx = x;  // stale contents from an earlier step must not survive
      layer->backward(Tree<double>{}, *out.cache, x, Needs{.input = false}, grads);
      BOOST_TEST(grads.dx.is_empty());
    }
  }
}

BOOST_AUTO_TEST_CASE(a_reused_step_writes_into_the_same_buffers) {
  const arma::mat x1 = random_batch(8, 16, 15), x2 = random_batch(8, 16, 16);
  for (const auto& layer : activations()) {
    if (layer->kind() == "identity") continue;  // its output is its input
    BOOST_TEST_CONTEXT(layer->kind()) {
      ForwardResult<double> out;
      BackwardResult<double> grads;
      layer->forward(Tree<double>{}, x1, Shape{8}, {}, out);
      layer->backward(Tree<double>{}, *out.cache, x1, Needs{}, grads);
      const double* y_memory = out.y().memptr();
      const double* dx_memory = grads.dx.memptr();
      const Cache* cache = out.cache.get();
      layer->forward(Tree<double>{}, x2, Shape{8}, {}, out);
      layer->backward(Tree<double>{}, *out.cache, x2, Needs{}, grads);
      BOOST_TEST(out.y().memptr() == y_memory);
      BOOST_TEST(grads.dx.memptr() == dx_memory);
      BOOST_TEST(out.cache.get() == cache);
    }
  }
}

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
