// Helpers shared by the layer tests (one file per layer under tests/layers/): random data,
// relative differences, error messages, and a layer's value at chosen points.
#pragma once

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "layercache/layercache.hpp"

namespace layer_tests {

using namespace layercache;

// A (rows × cols) matrix of standard normal entries drawn from rng.
inline arma::mat random_matrix(std::size_t rows, std::size_t cols, Rng& rng) {
  arma::mat m(rows, cols);
  for (double& v : m) v = rng.normal();
  return m;
}

inline double max_relative_difference(const arma::mat& a, const arma::mat& b) {
  BOOST_REQUIRE(a.n_rows == b.n_rows && a.n_cols == b.n_cols);
  return arma::abs(a - b).max() / std::max(arma::abs(b).max(), 1e-300);
}


// The message of the E (a layercache error type) that `f` throws (fails the test when it
// throws none; another exception escapes and fails the test too).
template <class E, class F>
inline std::string error_of(F f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  BOOST_ERROR("expected an error of the requested type");
  return {};
}

// The message of the ShapeError that `f` throws (fails the test when it throws none).
template <class F>
inline std::string shape_error_of(F f) {
  return error_of<ShapeError>(f);
}

inline bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

inline constexpr double inf = std::numeric_limits<double>::infinity();

// The layer applied to a column of values (one sample); checks forward against infer.
inline arma::vec apply(const Layer& layer, const arma::vec& x) {
  const arma::mat y = layer.forward(Tree<double>{}, arma::mat(x)).y();
  const arma::mat inferred = layer.infer(Tree<double>{}, arma::mat(x));
  bool same = y.n_elem == inferred.n_elem;
  for (arma::uword i = 0; same && i < y.n_elem; ++i)
    same = y(i) == inferred(i) || (std::isnan(y(i)) && std::isnan(inferred(i)));
  BOOST_TEST(same, "infer differs from forward");
  return arma::vec(y);
}

// The layer's value at one point.
inline double at(const Layer& layer, double x) { return apply(layer, arma::vec{x})(0); }

// Every parameter-free layer of this area, with its kind.
inline std::vector<AnyLayer> activations() {
  return {ReLU(), LeakyReLU(), ELU(), GELU(), GELU({.tanh_approximation = true}),
          Sigmoid(), Tanh(), SiLU(), Softplus(), SELU(), Hardswish(), Mish(),
          Softmax(), LogSoftmax(), Identity()};
}

// A (rows × cols) batch of N(0, 2²) entries drawn from Rng(seed).
inline arma::mat random_batch(arma::uword rows, arma::uword cols, std::uint64_t seed) {
  Rng rng(seed);
  return 2.0 * random_matrix(rows, cols, rng);
}

}  // namespace layer_tests
