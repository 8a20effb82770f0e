// Specification of the window geometry convolution and pooling share (layercache/layers/
// window2d.hpp): output sizes, dilation, "same" padding and the error for a small image.
#include <boost/test/unit_test.hpp>

#include "layer_test_support.hpp"
#include "layercache/layercache.hpp"

using namespace layercache;
using namespace layer_tests;

BOOST_AUTO_TEST_CASE(windows_count_as_floor_of_padded_side_minus_span_over_stride_plus_one) {
  // Height: (7 + 2·1 − 3) / 2 + 1 = 4; width with dilation 2: span 2·(3 − 1) + 1 = 5,
  // (10 + 0 − 5) / 1 + 1 = 6.
  const ImageWindows w = image_windows(
      Shape{2, 7, 10}, {.kernel = 3, .stride = {2, 1}, .dilation = {1, 2}, .padding = {1, 0}});
  BOOST_TEST(w.height.output == 4u);
  BOOST_TEST(w.height.pad_before == 1u);
  BOOST_TEST(w.height.pad_after == 1u);
  BOOST_TEST(w.width.span() == 5u);
  BOOST_TEST(w.width.output == 6u);
  BOOST_TEST(w.pixels() == 24u);
}

BOOST_AUTO_TEST_CASE(same_padding_gives_ceil_of_side_over_stride_with_the_odd_zero_after) {
  // Side 7, stride 2: 4 windows of 3 reach (4 − 1)·2 + 3 = 9, two zeros, one on each side;
  // side 6, kernel 4, stride 1: 6 windows reach 9, three zeros, the odd one after.
  const ImageWindows w = image_windows(
      Shape{1, 7, 6},
      {.kernel = {3, 4}, .stride = {2, 1}, .padding = Padding2D::same_size()});
  BOOST_TEST(w.height.output == 4u);
  BOOST_TEST(w.height.pad_before == 1u);
  BOOST_TEST(w.height.pad_after == 1u);
  BOOST_TEST(w.width.output == 6u);
  BOOST_TEST(w.width.pad_before == 1u);
  BOOST_TEST(w.width.pad_after == 2u);
}

BOOST_AUTO_TEST_CASE(an_image_smaller_than_one_window_is_a_shape_error_naming_sizes) {
  const std::string e = shape_error_of(
      [] { image_windows(Shape{1, 2, 2}, {.kernel = 3, .stride = 1}); });
  BOOST_TEST(contains(e, "expected input (1, height, width) of at least 3 × 3 after padding 0, "
                         "got (1, 2, 2)"),
             e);
}

BOOST_AUTO_TEST_CASE(sizes_print_as_one_number_when_square) {
  BOOST_TEST(Size2(3).str() == "3");
  BOOST_TEST(Size2(3, 5).str() == "3 × 5");
  BOOST_TEST(Padding2D(1, 2).str() == "1 × 2");
  BOOST_TEST(Padding2D::same_size().str() == "same");
}
