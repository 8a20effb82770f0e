// Batches between layercache's layout and row-major samples (see layercache/layout.hpp).
#include "layercache/layout.hpp"

#include "layercache/layer.hpp"

namespace layercache {
namespace {

// Copies x with every (rows × cols) channel block of every sample transposed: a block read
// column-major as (rows × cols) is written column-major as (cols × rows). Both directions
// are this with rows and cols swapped.
template <class T>
arma::Mat<T> transpose_channels(const arma::Mat<T>& x, const Shape& shape, std::size_t rows,
                                std::size_t cols) {
  check_rows(x.n_rows, shape);
  arma::Mat<T> out(x.n_rows, x.n_cols);
  const std::size_t block = rows * cols;
  for (std::size_t s = 0; s < x.n_cols; ++s)
    for (std::size_t offset = 0; offset < x.n_rows; offset += block) {
      const arma::Mat<T> channel(const_cast<T*>(x.colptr(s)) + offset, rows, cols, false, true);
      arma::Mat<T> transposed(out.colptr(s) + offset, cols, rows, false, true);
      transposed = channel.t();
    }
  return out;
}

}  // namespace

template <class T>
arma::Mat<T> to_row_major(const arma::Mat<T>& x, const Shape& shape) {
  if (shape.rank() != 3) {
    check_rows(x.n_rows, shape);
    return x;
  }
  return transpose_channels(x, shape, shape[1], shape[2]);  // (h × w) column-major → row-major
}

template <class T>
arma::Mat<T> from_row_major(const arma::Mat<T>& x, const Shape& shape) {
  if (shape.rank() != 3) {
    check_rows(x.n_rows, shape);
    return x;
  }
  return transpose_channels(x, shape, shape[2], shape[1]);  // row-major (h, w) → column-major
}

template arma::Mat<float> to_row_major(const arma::Mat<float>&, const Shape&);
template arma::Mat<double> to_row_major(const arma::Mat<double>&, const Shape&);
template arma::Mat<float> from_row_major(const arma::Mat<float>&, const Shape&);
template arma::Mat<double> from_row_major(const arma::Mat<double>&, const Shape&);

}  // namespace layercache
