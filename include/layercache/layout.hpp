// Converting batches between layercache's layout and the row-major layout of ONNX, PyTorch
// and NumPy.
//
// layercache keeps one sample per column, and an image sample of shape (c, h, w) holds its
// channels one after another, each an (h × w) matrix in column-major order (the memory order
// of arma::Cube(h, w, c)). ONNX, PyTorch and NumPy store a sample row-major: an image as
// (c, h, w) with the width varying fastest (NCHW for a batch). A shape of any other rank (a
// vector (n), a sequence (T, F)) is stored the same way in both. So the two layouts differ
// only within the channels of images: each channel is transposed.
//
// The (features × batch) matrix these functions return, read in memory order, is exactly a
// row-major (batch × features) array, e.g. an NCHW batch: write its memory to a file and
// numpy.fromfile(...).reshape(batch, c, h, w) reads it.
#pragma once

#include <armadillo>

#include "layercache/shape.hpp"

namespace layercache {

/// A copy of the batch x (shape.size() × batch) with every sample in row-major order of
/// `shape` (for an image (c, h, w): channel by channel, row by row). Throws ShapeError when
/// x does not have shape.size() rows.
template <class T>
arma::Mat<T> to_row_major(const arma::Mat<T>& x, const Shape& shape);

/// The inverse of to_row_major: a batch of row-major samples of `shape` in layercache's
/// layout. Throws ShapeError when x does not have shape.size() rows.
template <class T>
arma::Mat<T> from_row_major(const arma::Mat<T>& x, const Shape& shape);

extern template arma::Mat<float> to_row_major(const arma::Mat<float>&, const Shape&);
extern template arma::Mat<double> to_row_major(const arma::Mat<double>&, const Shape&);
extern template arma::Mat<float> from_row_major(const arma::Mat<float>&, const Shape&);
extern template arma::Mat<double> from_row_major(const arma::Mat<double>&, const Shape&);

}  // namespace layercache
