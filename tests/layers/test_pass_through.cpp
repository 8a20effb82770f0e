// Specification of what Identity, Flatten and Reshape share through PassThroughLayer: the
// output is the input buffer, backward passes dy through, the cache holds no bytes, and the
// caches of different pass-through layers are not interchangeable.
#include <boost/test/unit_test.hpp>

#include <vector>

#include "layercache/layercache.hpp"
#include "layer_test_support.hpp"

using namespace layercache;
using namespace layer_tests;

namespace {

// The three pass-through layers with an input shape each accepts.
struct PassCase {
  AnyLayer layer;
  Shape input;
};

std::vector<PassCase> pass_through_layers() {
  return {{Identity(), Shape{2, 3, 4}}, {Flatten(), Shape{2, 3, 4}}, {Reshape(Shape{4, 6}), Shape{2, 3, 4}}};
}

}  // namespace

BOOST_AUTO_TEST_CASE(pass_through_output_is_the_input_buffer_and_dx_is_dy) {
  for (const auto& c : pass_through_layers()) {
    BOOST_TEST_CONTEXT(c.layer->kind()) {
      const arma::mat x = random_batch(24, 3, 1);
      const auto out = c.layer->forward(Tree<double>{}, x, c.input);
      BOOST_TEST(out.y().memptr() == out.input->memptr());
      BOOST_TEST((out.shape == c.layer->output_shape(c.input)));
      BOOST_TEST(out.cache->bytes() == 0u);
      const arma::mat dy = random_batch(24, 3, 2);
      const auto back = c.layer->backward(Tree<double>{}, *out.cache, dy);
      BOOST_TEST(arma::approx_equal(back.dx, dy, "absdiff", 0.0));
      Needs no_input;
      no_input.input = false;
      BOOST_TEST(c.layer->backward(Tree<double>{}, *out.cache, dy, no_input).dx.is_empty());
    }
  }
}

BOOST_AUTO_TEST_CASE(pass_through_rejects_a_dy_of_another_shape) {
  for (const auto& c : pass_through_layers()) {
    BOOST_TEST_CONTEXT(c.layer->kind()) {
      const auto out = c.layer->forward(Tree<double>{}, random_batch(24, 3, 1), c.input);
      BOOST_TEST(contains(shape_error_of([&] {
                            c.layer->backward(Tree<double>{}, *out.cache, arma::mat(24, 4));
                          }),
                          "expected dy (24 × 3)"));
    }
  }
}

BOOST_AUTO_TEST_CASE(pass_through_caches_are_not_interchangeable) {
  const Flatten flatten;
  const Reshape reshape(Shape{4, 6});
  const auto out = flatten.forward(Tree<double>{}, random_batch(24, 3, 1), Shape{2, 3, 4});
  BOOST_CHECK_EXCEPTION(reshape.backward(Tree<double>{}, *out.cache, arma::mat(24, 3)), CacheError,
                        [](const CacheError& e) { return contains(e.what(), "flatten cache"); });
  BOOST_CHECK_THROW(Identity().backward(Tree<double>{}, *out.cache, arma::mat(24, 3)), CacheError);
}
