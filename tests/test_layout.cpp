// Specification of the conversions between layercache's layout and row-major samples
// (layercache/layout.hpp).
#include <boost/test/unit_test.hpp>

#include "layercache/layout.hpp"
#include "layercache/errors.hpp"

using namespace layercache;

BOOST_AUTO_TEST_SUITE(layout)

// One image (2, 2, 3): channel ci, row r, column c holds 100·ci + 10·r + c. layercache keeps
// each channel column-major (down the rows first), row-major order goes along the columns.
BOOST_AUTO_TEST_CASE(to_row_major_transposes_each_image_channel) {
  const Shape shape{2, 2, 3};
  arma::fmat x(12, 1);
  for (int ci = 0; ci < 2; ++ci)
    for (int r = 0; r < 2; ++r)
      for (int c = 0; c < 3; ++c) x(ci * 6 + c * 2 + r, 0) = float(100 * ci + 10 * r + c);
  const arma::fmat want{{0, 1, 2, 10, 11, 12, 100, 101, 102, 110, 111, 112}};
  BOOST_TEST(arma::approx_equal(to_row_major(x, shape), arma::fmat(want.t()), "absdiff", 0.0f));
}

BOOST_AUTO_TEST_CASE(from_row_major_undoes_to_row_major_for_every_sample) {
  const Shape shape{3, 4, 5};
  const arma::mat x = arma::randu(60, 7);
  const arma::mat row_major = to_row_major(x, shape);
  BOOST_TEST(arma::any(arma::vectorise(row_major != x)));  // the order did change
  BOOST_TEST(arma::approx_equal(from_row_major(row_major, shape), x, "absdiff", 0.0));
}

BOOST_AUTO_TEST_CASE(vectors_and_sequences_are_already_row_major) {
  const arma::fmat x = arma::randu<arma::fmat>(12, 3);
  BOOST_TEST(arma::approx_equal(to_row_major(x, Shape{12}), x, "absdiff", 0.0f));
  BOOST_TEST(arma::approx_equal(to_row_major(x, Shape{4, 3}), x, "absdiff", 0.0f));
  BOOST_TEST(arma::approx_equal(from_row_major(x, Shape{4, 3}), x, "absdiff", 0.0f));
}

BOOST_AUTO_TEST_CASE(a_batch_of_another_size_is_a_shape_error) {
  const arma::fmat x(10, 2, arma::fill::zeros);
  BOOST_CHECK_THROW(to_row_major(x, Shape{1, 3, 3}), ShapeError);
  BOOST_CHECK_THROW(from_row_major(x, Shape{9}), ShapeError);
}

BOOST_AUTO_TEST_SUITE_END()
