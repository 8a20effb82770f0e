// Specification of AvgPool2D and GlobalAvgPool2D: window means with and without the padding
// in the divisor, gradients spread evenly, and the shared checks.
#include <boost/test/unit_test.hpp>

#include "layercache/layercache.hpp"
#include "layercache/testing_boost.hpp"
#include "layer_test_support.hpp"

using namespace layercache;
using namespace layer_tests;

namespace {

// The image [1 2 3; 4 5 6; 7 8 9] (rows h, columns w), stored column by column.
const arma::mat image_1_to_9 = arma::vec{1, 4, 7, 2, 5, 8, 3, 6, 9};

}  // namespace

BOOST_AUTO_TEST_CASE(avg_pool2d_passes_shared_checks) {
  const std::vector<std::pair<AvgPool2DOptions, Shape>> cases = {
      {{.kernel = 2}, Shape{2, 6, 5}},
      {{.kernel = 3, .stride = 1}, Shape{2, 5, 5}},
      {{.kernel = {3, 2}, .stride = {2, 1}, .padding = {1, 0}}, Shape{2, 6, 5}},
      {{.kernel = 3, .stride = 2, .padding = 1, .count_padding = false}, Shape{1, 5, 6}},
      {{.kernel = 2, .padding = Padding2D::same_size()}, Shape{2, 5, 3}},
  };
  for (const auto& [options, input] : cases) {
    const AvgPool2D pool(options);
    const auto r = testing::check_gradients(pool, input);
    BOOST_TEST(r.passed, r.report());
    LAYERCACHE_CHECK_CACHE_CONTRACT(pool, input);
    LAYERCACHE_CHECK_FLOAT_MATCHES_DOUBLE(pool, input, 1e-5);
  }
}

BOOST_AUTO_TEST_CASE(avg_pool2d_means_windows_counting_padding_or_not) {
  // 2 × 2 windows, stride 2, padding 1: {x00}, {x10, x20}, {x01, x02}, {x11, x12, x21, x22}.
  const AvgPool2D counting({.kernel = 2, .stride = 2, .padding = 1});
  const arma::mat y = counting.forward(Tree<double>{}, image_1_to_9, Shape{1, 3, 3}).y();
  BOOST_TEST(arma::approx_equal(y, arma::mat(arma::vec{0.25, 2.75, 1.25, 7}), "absdiff", 1e-12),
             "got\n" << y);

  const AvgPool2D inside({.kernel = 2, .stride = 2, .padding = 1, .count_padding = false});
  const auto out = inside.forward(Tree<double>{}, image_1_to_9, Shape{1, 3, 3});
  BOOST_TEST(arma::approx_equal(out.y(), arma::mat(arma::vec{1, 5.5, 2.5, 7}), "absdiff", 1e-12),
             "got\n" << out.y());
  // dy = 1 everywhere: each pixel gets 1 / (its window's taps inside the image)
  const arma::mat dx = inside.backward(Tree<double>{}, *out.cache, arma::mat(4, 1, arma::fill::ones)).dx;
  const arma::mat expected = arma::vec{1, 0.5, 0.5, 0.5, 0.25, 0.25, 0.5, 0.25, 0.25};
  BOOST_TEST(arma::approx_equal(dx, expected, "absdiff", 1e-12), "got\n" << dx);
}

BOOST_AUTO_TEST_CASE(avg_pool2d_adds_gradients_of_overlapping_windows) {
  // 2 × 2 windows with stride 1 over a 3 × 3 image: the centre is in all four windows.
  const AvgPool2D pool({.kernel = 2, .stride = 1});
  const auto out = pool.forward(Tree<double>{}, image_1_to_9, Shape{1, 3, 3});
  BOOST_TEST(arma::approx_equal(out.y(), arma::mat(arma::vec{3, 6, 4, 7}), "absdiff", 1e-12));
  const arma::mat dx = pool.backward(Tree<double>{}, *out.cache, arma::vec{4, 8, 12, 16}).dx;
  const arma::mat expected = arma::vec{1, 3, 2, 4, 10, 6, 3, 7, 4};
  BOOST_TEST(arma::approx_equal(dx, expected, "absdiff", 1e-12), "got\n" << dx);
}

BOOST_AUTO_TEST_CASE(avg_pool2d_rejects_flat_inputs_and_bad_options) {
  const std::string e = shape_error_of([] { AvgPool2D().output_shape(Shape{16}); });
  BOOST_TEST(contains(e, "Shape{1, 28, 28}"), e);
  BOOST_CHECK_THROW(AvgPool2D({.kernel = 2, .padding = 2}), ConfigError);
  BOOST_CHECK_THROW(AvgPool2D({.kernel = 0}), ConfigError);
  BOOST_TEST((AvgPool2D({.kernel = 3, .stride = 2}).output_shape(Shape{4, 7, 8}) == Shape{4, 3, 3}));
}

BOOST_AUTO_TEST_CASE(global_avg_pool2d_means_each_channel) {
  const arma::mat x = arma::join_cols(image_1_to_9, 2 * image_1_to_9);  // channels: x and 2x
  const GlobalAvgPool2D pool;
  const auto out = pool.forward(Tree<double>{}, x, Shape{2, 3, 3});
  BOOST_TEST((out.shape == Shape{2}));
  BOOST_TEST(arma::approx_equal(out.y(), arma::mat(arma::vec{5, 10}), "absdiff", 1e-12));
  const arma::mat dx = pool.backward(Tree<double>{}, *out.cache, arma::vec{9, 18}).dx;
  const arma::mat expected = arma::join_cols(arma::vec(9, arma::fill::ones), arma::vec(9).fill(2));
  BOOST_TEST(arma::approx_equal(dx, expected, "absdiff", 1e-12), "got\n" << dx);
  BOOST_CHECK_THROW(pool.output_shape(Shape{18}), ShapeError);
}

BOOST_AUTO_TEST_CASE(global_avg_pool2d_passes_shared_checks) {
  const Shape image{3, 4, 5};
  LAYERCACHE_CHECK_GRADIENTS(GlobalAvgPool2D(), image);
  LAYERCACHE_CHECK_CACHE_CONTRACT(GlobalAvgPool2D(), image);
  LAYERCACHE_CHECK_FLOAT_MATCHES_DOUBLE(GlobalAvgPool2D(), image);
}
