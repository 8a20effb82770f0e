// Per-sample shapes with fixed capacity (no allocation when shapes are checked every step).
#include "layercache/shape.hpp"

#include "layercache/errors.hpp"
#include "layercache/sizes.hpp"

namespace layercache {

Shape::Shape(std::initializer_list<std::size_t> dims) {
  if (dims.size() > max_rank)
    throw ShapeError("a shape has at most " + std::to_string(max_rank) + " dimensions, got " +
                     std::to_string(dims.size()));
  for (std::size_t d : dims) dims_[rank_++] = d;
  // size() must not wrap around: a wrapped size could match a batch's rows by accident.
  std::size_t n = 1;
  // (the message is built only on the error path: shapes are made on every step)
  for (std::size_t i = 0; i < rank_; ++i)
    if (__builtin_mul_overflow(n, dims_[i], &n) || n > max_size) {
      const std::string what = "values of the shape " + str();
      std::size_t m = 1;
      for (std::size_t j = 0; j < rank_; ++j) m = checked_mul<ShapeError>(m, dims_[j], what);
    }
}

std::size_t Shape::size() const noexcept {
  if (rank_ == 0) return 0;
  std::size_t n = 1;
  for (std::size_t i = 0; i < rank_; ++i) n *= dims_[i];
  return n;
}

std::string Shape::str() const {
  std::string out = "(";
  for (std::size_t i = 0; i < rank_; ++i) {
    if (i) out += ", ";
    out += std::to_string(dims_[i]);
  }
  return out + ")";
}

bool operator==(const Shape& a, const Shape& b) noexcept {
  if (a.rank_ != b.rank_) return false;
  for (std::size_t i = 0; i < a.rank_; ++i)
    if (a.dims_[i] != b.dims_[i]) return false;
  return true;
}

}  // namespace layercache
