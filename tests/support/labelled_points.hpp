// Synthetic labelled 2-D data sets made point by point (two blobs, a ring, two spirals), for
// the tests and test programs that train on them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <tuple>

#include "layercache/data.hpp"

namespace layercache::testing_data {

/// n samples of shape (2) and n_classes classes: sample i is point(i, rng), a tuple
/// (x0, x1, label), drawing from Rng(seed).
template <class T = float, class F>
Dataset<T> labelled_points(std::size_t n, std::size_t n_classes, std::uint64_t seed, F point) {
  Rng rng(seed);
  Dataset<T> data;
  data.shape = Shape{2};
  data.x.set_size(2, n);
  data.labels.set_size(n);
  data.n_classes = n_classes;
  for (std::size_t i = 0; i < n; ++i) {
    const auto [x0, x1, label] = point(i, rng);
    data.x(0, i) = T(x0);
    data.x(1, i) = T(x1);
    data.labels[i] = label;
  }
  return data;
}

}  // namespace layercache::testing_data
