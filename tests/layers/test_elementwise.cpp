// Specification of the behaviour every activation shares through ElementwiseLayer: any
// shape in, the same shape out; rows checked against the shape; dy and cache checks;
// no dx when nobody needs it; buffers reused across steps.
#include <boost/test/unit_test.hpp>

#include "layercache/layercache.hpp"
#include "layercache/testing_boost.hpp"
#include "layer_test_support.hpp"

using namespace layercache;
using namespace layer_tests;

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

BOOST_AUTO_TEST_CASE(a_wrong_dy_for_a_network_is_rejected_by_the_network_naming_both_shapes) {
  const Network net{Dense(4, 5), Tanh()};
  Rng rng(1);
  const auto params = net.init<double>(Shape{4}, xavier_uniform(), rng);
  const auto out = net.forward(params, random_batch(4, 3, 8));
  try {
    net.backward(params, *out.cache, arma::mat(5, 2, arma::fill::zeros));
    BOOST_FAIL("no ShapeError");
  } catch (const ShapeError& e) {
    BOOST_TEST(e.path() == "");  // the dy given is the network's, checked before any child
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
  // Made by no forward: no stamp (kind "unknown"), no tensor.
  BOOST_CHECK_THROW(Tanh().backward(Tree<double>{}, OneTensorCache<double>{}, arma::mat(3, 2)),
                    CacheError);
  BOOST_CHECK_THROW(GELU().backward(Tree<double>{}, OneTensorCache<double>{}, arma::mat(3, 2)),
                    CacheError);
}

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
