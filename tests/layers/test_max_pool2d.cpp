// Specification of MaxPool2D: window maxima, gradient routing, ties, NaN and its cache. The
// shared checks run on its rows in test_layers.cpp.
#include <boost/test/unit_test.hpp>

#include "layercache/layercache.hpp"
#include "layercache/testing_boost.hpp"
#include "layer_test_support.hpp"

using namespace layercache;
using namespace layer_tests;

BOOST_AUTO_TEST_CASE(max_pool2d_picks_window_maxima) {
  // One 4×4 channel (rows h, columns w), column by column; 2×2 windows, stride 2.
  const arma::mat image = {{1, 5, 2, 0}, {3, 4, 8, 1}, {9, 0, 6, 7}, {2, 2, 3, 5}};
  const arma::mat x = arma::vectorise(image);
  const MaxPool2D pool({.kernel = 2, .stride = 2});
  const auto out = pool.forward(Tree<double>{}, x, Shape{1, 4, 4});
  BOOST_TEST((out.shape == Shape{1, 2, 2}));
  const arma::mat expected = arma::vectorise(arma::mat{{5, 8}, {9, 7}});
  BOOST_TEST(arma::approx_equal(out.y(), expected, "absdiff", 0.0), "got\n" << out.y());
  BOOST_TEST(arma::approx_equal(pool.infer(Tree<double>{}, x, Shape{1, 4, 4}), expected, "absdiff", 0.0));
}

BOOST_AUTO_TEST_CASE(max_pool2d_routes_gradients_to_the_maxima) {
  const arma::mat image = {{1, 5, 2, 0}, {3, 4, 8, 1}, {9, 0, 6, 7}, {2, 2, 3, 5}};
  const MaxPool2D pool({.kernel = 2, .stride = 2});
  const auto out = pool.forward(Tree<double>{}, arma::mat(arma::vectorise(image)), Shape{1, 4, 4});
  const arma::mat dy = arma::vectorise(arma::mat{{10, 20}, {30, 40}});
  const arma::mat dx = pool.backward(Tree<double>{}, *out.cache, dy).dx;
  const arma::mat expected = {{0, 10, 0, 0}, {0, 0, 20, 0}, {30, 0, 0, 40}, {0, 0, 0, 0}};
  BOOST_TEST(arma::approx_equal(dx, arma::vectorise(expected), "absdiff", 0.0), "got\n"
                                                                                  << dx);
}

BOOST_AUTO_TEST_CASE(max_pool2d_adds_gradients_of_overlapping_windows) {
  // 3×3 image whose centre is the maximum of all four 2×2 windows (stride 1).
  const arma::mat image = {{1, 2, 1}, {2, 9, 2}, {1, 2, 1}};
  const MaxPool2D pool({.kernel = 2, .stride = 1});
  const auto out = pool.forward(Tree<double>{}, arma::mat(arma::vectorise(image)), Shape{1, 3, 3});
  const arma::mat dy = arma::vec{1, 2, 3, 4};
  const arma::mat dx = pool.backward(Tree<double>{}, *out.cache, dy).dx;
  arma::mat expected(9, 1, arma::fill::zeros);
  expected(4) = 10;
  BOOST_TEST(arma::approx_equal(dx, expected, "absdiff", 0.0), "got\n" << dx);
}

BOOST_AUTO_TEST_CASE(max_pool2d_ties_go_to_the_first_maximum_in_memory_order) {
  // All four entries equal: the first in memory order, (0, 0), gets the whole gradient.
  const MaxPool2D pool({.kernel = 2});
  const arma::mat x(4, 1, arma::fill::value(3.0));
  const auto out = pool.forward(Tree<double>{}, x, Shape{1, 2, 2});
  const arma::mat dx = pool.backward(Tree<double>{}, *out.cache, arma::mat{1.0}).dx;
  BOOST_TEST(arma::approx_equal(dx, arma::mat{1.0, 0, 0, 0}.t(), "absdiff", 0.0), "got\n" << dx);
  // Equal maxima in (1, 0) and (0, 1): (1, 0) comes first down the first column.
  const arma::mat y = {0, 5, 5, 1};
  const auto out2 = pool.forward(Tree<double>{}, arma::mat(y.t()), Shape{1, 2, 2});
  const arma::mat dx2 = pool.backward(Tree<double>{}, *out2.cache, arma::mat{1.0}).dx;
  BOOST_TEST(arma::approx_equal(dx2, arma::mat{0, 1.0, 0, 0}.t(), "absdiff", 0.0), "got\n" << dx2);
}

BOOST_AUTO_TEST_CASE(max_pool2d_propagates_nan) {
  const MaxPool2D pool({.kernel = 2});
  const arma::mat x = arma::mat{1, arma::datum::nan, 7, 2}.t();
  const arma::mat y = pool.forward(Tree<double>{}, x, Shape{1, 2, 2}).y();
  BOOST_TEST(std::isnan(y(0)));
}

BOOST_AUTO_TEST_CASE(max_pool2d_cache_holds_indices_not_the_input) {
  const MaxPool2D pool({.kernel = 2});
  Rng rng(2);
  const arma::mat x = random_matrix(2 * 6 * 6, 5, rng);
  const auto out = pool.forward(Tree<double>{}, x, Shape{2, 6, 6});
  // one 4-byte index per output: 2·3·3 outputs × 5 samples
  BOOST_TEST(out.cache->bytes() == 2u * 3 * 3 * 5 * 4);
}

BOOST_AUTO_TEST_CASE(max_pool2d_floors_output_sizes_and_rejects_small_inputs) {
  const MaxPool2D pool({.kernel = 2, .stride = 2});
  BOOST_TEST((pool.output_shape(Shape{3, 7, 5}) == Shape{3, 3, 2}));
  const std::string small = shape_error_of([&] { pool.output_shape(Shape{3, 1, 5}); });
  BOOST_TEST(contains(small, "at least 2 × 2"), small);
  BOOST_TEST(contains(small, "got (3, 1, 5)"), small);
  const std::string flat = shape_error_of([&] { pool.output_shape(Shape{64}); });
  BOOST_TEST(contains(flat, "expected input (channels, height, width), got (64)"), flat);
}

BOOST_AUTO_TEST_CASE(max_pool2d_padding_is_never_the_maximum) {
  // The image −[1 2 3; 4 5 6; 7 8 9]; 2 × 2 windows, stride 2, padding 1: the windows are
  // {x00}, {x01, x02}, {x10, x20}, {x11, x12, x21, x22} (padding would win if it were 0).
  const arma::mat x = -arma::vec{1, 4, 7, 2, 5, 8, 3, 6, 9};
  const MaxPool2D pool({.kernel = 2, .stride = 2, .padding = 1});
  const auto out = pool.forward(Tree<double>{}, x, Shape{1, 3, 3});
  BOOST_TEST((out.shape == Shape{1, 2, 2}));
  const arma::mat expected = arma::vec{-1, -4, -2, -5};
  BOOST_TEST(arma::approx_equal(out.y(), expected, "absdiff", 0.0), "got\n" << out.y());
  BOOST_TEST(arma::approx_equal(pool.infer(Tree<double>{}, x, Shape{1, 3, 3}), expected,
                                "absdiff", 0.0));
  const arma::mat dx = pool.backward(Tree<double>{}, *out.cache, arma::vec{1, 2, 3, 4}).dx;
  const arma::mat expected_dx = arma::vec{1, 2, 0, 3, 4, 0, 0, 0, 0};
  BOOST_TEST(arma::approx_equal(dx, expected_dx, "absdiff", 0.0), "got\n" << dx);
}

BOOST_AUTO_TEST_CASE(max_pool2d_rejects_padding_not_smaller_than_the_kernel) {
  const std::string e = error_of<ConfigError>([] { MaxPool2D({.kernel = 2, .padding = {0, 2}}); });
  BOOST_TEST(contains(e, "padding 0 × 2"), e);
  BOOST_CHECK_THROW(MaxPool2D({.kernel = {2, 0}}), ConfigError);
}

// ---- Flatten and Reshape ------------------------------------------------------------------



BOOST_AUTO_TEST_CASE(max_pool2d_gives_uncovered_rows_and_columns_a_zero_gradient) {
  // A 3 × 5 image under 2 × 2 windows with stride 2: the last row and column belong to no
  // window. Their gradient is 0 even in a result buffer that held other values before.
  const arma::mat image = {{1, 9, 2, 0, 7}, {3, 4, 8, 1, 7}, {7, 7, 7, 7, 7}};
  const MaxPool2D pool({.kernel = 2, .stride = 2});
  const auto out = pool.forward(Tree<double>{}, arma::mat(arma::vectorise(image)), Shape{1, 3, 5});
  BOOST_TEST((out.shape == Shape{1, 1, 2}));
  BackwardResult<double> result;
  result.dx.set_size(15, 1);
  result.dx.fill(-1);
  pool.backward_into(Tree<double>{}, *out.cache, arma::mat{10.0, 20.0}.t(), Needs{}, result);
  const arma::mat expected = {{0, 10, 0, 0, 0}, {0, 0, 20, 0, 0}, {0, 0, 0, 0, 0}};
  BOOST_TEST(arma::approx_equal(result.dx, arma::vectorise(expected), "absdiff", 0.0),
             "got\n" << result.dx);
}

BOOST_AUTO_TEST_CASE(max_pool2d_2x2_matches_window_maxima_for_every_column_height) {
  // Output columns of 1 to 9 rows (the vector code's lengths and remainders), an odd input
  // height and width, two channels and two samples; every output is the maximum of its
  // window computed here, and backward puts dy at that maximum and 0 everywhere else.
  const MaxPool2D pool({.kernel = 2, .stride = 2});
  Rng rng(7);
  for (std::size_t ho = 1; ho <= 9; ++ho) {
    const std::size_t h = 2 * ho + 1, w = 7, c = 2, wo = 3;
    const arma::mat x = random_matrix(c * h * w, 2, rng);
    const auto out = pool.forward(Tree<double>{}, x, Shape{c, h, w});
    const arma::mat dy = random_matrix(c * ho * wo, 2, rng);
    const arma::mat dx = pool.backward(Tree<double>{}, *out.cache, dy).dx;
    arma::mat expected_y(c * ho * wo, 2), expected_dx(c * h * w, 2, arma::fill::zeros);
    for (std::size_t n = 0; n < 2; ++n)
      for (std::size_t ci = 0; ci < c; ++ci)
        for (std::size_t j = 0; j < wo; ++j)
          for (std::size_t i = 0; i < ho; ++i) {
            std::size_t best = ci * h * w + 2 * j * h + 2 * i;
            for (std::size_t at : {best + 1, best + h, best + h + 1})
              if (x(at, n) > x(best, n)) best = at;
            const std::size_t o = (ci * wo + j) * ho + i;
            expected_y(o, n) = x(best, n);
            expected_dx(best, n) = dy(o, n);
          }
    BOOST_TEST(arma::approx_equal(out.y(), expected_y, "absdiff", 0.0), "h_out = " << ho);
    BOOST_TEST(arma::approx_equal(dx, expected_dx, "absdiff", 0.0), "h_out = " << ho);
  }
}
