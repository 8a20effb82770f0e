// Library-internal (not installed): 64-bit words stored exactly in a float or double tensor,
// as a column of 16-bit pieces (word i's bits 16·j .. 16·j + 15 at row 4·i + j). Every piece
// is a whole number below 2^16, which float (24-bit significand) and double hold exactly; the
// rng state and a training run's counters go into checkpoints this way.
#pragma once

#include <armadillo>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "layercache/errors.hpp"
#include "format_number.hpp"

namespace layercache::detail {

inline constexpr std::size_t pieces_per_word = 4;

// The (4·n × 1) column of pieces of words[0..n).
template <class T>
arma::Mat<T> words_to_pieces(const std::uint64_t* words, std::size_t n) {
  arma::Mat<T> pieces(pieces_per_word * n, 1);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < pieces_per_word; ++j)
      pieces(pieces_per_word * i + j, 0) = T((words[i] >> (16 * j)) & 0xffffu);
  return pieces;
}

// Reads n words back from their column of pieces into words[0..n). Throws DataError when the
// tensor is not (4·n × 1) or a value is not a whole number in [0, 65535]; `what` describes the
// tensor ("an rng state"), and the caller adds the path.
template <class T>
void pieces_to_words(const arma::Mat<T>& pieces, std::uint64_t* words, std::size_t n,
                     const std::string& what) {
  const std::size_t rows = pieces_per_word * n;
  if (pieces.n_rows != rows || pieces.n_cols != 1)
    throw DataError("expected " + what + ": a (" + std::to_string(rows) +
                    " × 1) column of 16-bit pieces, found (" + std::to_string(pieces.n_rows) +
                    " × " + std::to_string(pieces.n_cols) + ")");
  for (std::size_t i = 0; i < n; ++i) {
    std::uint64_t word = 0;
    for (std::size_t j = 0; j < pieces_per_word; ++j) {
      const T v = pieces(pieces_per_word * i + j, 0);
      if (!(v >= T(0) && v <= T(65535) && std::floor(v) == v))
        throw DataError("expected " + what + ": row " + std::to_string(pieces_per_word * i + j) +
                        " holds " + format_number(double(v)) +
                        ", not a whole number in [0, 65535]");
      word |= std::uint64_t(v) << (16 * j);
    }
    words[i] = word;
  }
}

}  // namespace layercache::detail
