// Shape of one sample (the batch dimension is the number of columns and is not part of it).
//
// A dense vector sample has shape (n); an image sample has shape (channels, height, width)
// and is stored as one column holding the channels one after another, each channel an
// (height × width) matrix in column-major order (the memory order of arma::Cube(h, w, c)).
// Shape has a fixed capacity so that checking shapes on every step allocates nothing.
#pragma once

#include <array>
#include <cstddef>
#include <initializer_list>
#include <string>

namespace layercache {

/// The shape of one sample: up to four dimensions, e.g. (784) or (1, 28, 28).
class Shape {
 public:
  /// Largest supported rank.
  static constexpr std::size_t max_rank = 4;

  /// The empty shape (rank 0).
  Shape() = default;
  /// A shape from its dimensions, outermost first; throws ShapeError past max_rank, or when
  /// the product of the dimensions does not fit in a size_t.
  Shape(std::initializer_list<std::size_t> dims);

  /// Number of dimensions.
  std::size_t rank() const noexcept { return rank_; }
  /// Dimension i (0-based, outermost first).
  std::size_t operator[](std::size_t i) const noexcept { return dims_[i]; }
  /// Number of scalars in one sample: the product of the dimensions (0 for rank 0).
  std::size_t size() const noexcept;
  /// "(784)" or "(1, 28, 28)".
  std::string str() const;

  /// Equal rank and dimensions.
  friend bool operator==(const Shape& a, const Shape& b) noexcept;

 private:
  std::array<std::size_t, max_rank> dims_{};
  std::size_t rank_ = 0;
};

}  // namespace layercache
