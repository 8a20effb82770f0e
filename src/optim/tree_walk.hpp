// Private helpers of the optimizers: allocation-free walks over trees of the same structure,
// and the state checks every transform shares.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <sstream>
#include <string>

#include "layercache/errors.hpp"
#include "layercache/optim/optimizer.hpp"
#include "layercache/tree.hpp"
#include "../format_number.hpp"
#include "../vector_kernel.hpp"

namespace layercache::optim {

/// Calls f(u, leaves...) for every non-empty leaf u of `updates`, with the leaves at the same
/// position in `trees` (which must mirror `updates`: checked before any update). Empty update
/// leaves are frozen params: skipped, so their state is never touched.
template <class F, class U, class... Trees>
void for_each_update(F&& f, U& updates, Trees&... trees) {
  if (updates.is_leaf()) {
    if (updates.value().n_elem != 0) f(updates.value(), trees.value()...);
    return;
  }
  for (std::size_t i = 0; i < updates.size(); ++i) for_each_update(f, updates.child(i), trees.child(i)...);
}

/// Σ x² over a tensor, accumulated in double (no overflow for float, no allocation).
/// Eight independent partial sums: one running sum would make every addition wait for the
/// previous one (no vectorization without reassociation), which cost more than the whole
/// momentum update; with eight the loop runs at memory speed.
template <class T>
LAYERCACHE_VECTOR_KERNEL double sum_of_squares(const T* x, std::size_t n) noexcept {
  double partial[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  const std::size_t blocked = n - n % 8;
  for (std::size_t i = 0; i < blocked; i += 8)
    for (std::size_t k = 0; k < 8; ++k) partial[k] += static_cast<double>(x[i + k]) * x[i + k];
  double sum = 0.0;
  for (std::size_t i = blocked; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  for (double p : partial) sum += p;
  return sum;
}

/// Σ x² over a whole tensor.
template <class T>
double sum_of_squares(const arma::Mat<T>& m) noexcept {
  return sum_of_squares(m.memptr(), m.n_elem);
}

/// p += u and Σ u² over n elements in one pass over memory (the apply step of every
/// optimizer), with the same eight partial sums as sum_of_squares.
template <class T>
LAYERCACHE_VECTOR_KERNEL double add_and_sum_of_squares(const T* __restrict x, T* __restrict y,
                                                       std::size_t n) noexcept {
  double partial[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  const std::size_t blocked = n - n % 8;
  for (std::size_t i = 0; i < blocked; i += 8)
    for (std::size_t k = 0; k < 8; ++k) {
      y[i + k] += x[i + k];
      partial[k] += static_cast<double>(x[i + k]) * x[i + k];
    }
  double sum = 0.0;
  for (std::size_t i = blocked; i < n; ++i) {
    y[i] += x[i];
    sum += static_cast<double>(x[i]) * x[i];
  }
  for (double v : partial) sum += v;
  return sum;
}

/// p += u and Σ u² over whole tensors of the same size.
template <class T>
double add_and_sum_of_squares(const arma::Mat<T>& u, arma::Mat<T>& p) noexcept {
  return add_and_sum_of_squares(u.memptr(), p.memptr(), u.n_elem);
}

/// True when every entry is finite. x − x is 0 for a finite x and NaN for NaN or ±Inf, so
/// the sum of those differences is 0 exactly when all entries are finite; written as eight
/// partial sums without branches, the loop vectorizes (a scalar isfinite scan does not).
template <class T>
LAYERCACHE_VECTOR_KERNEL bool all_finite(const T* x, std::size_t n) noexcept {
  T partial[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  const std::size_t blocked = n - n % 8;
  for (std::size_t i = 0; i < blocked; i += 8)
    for (std::size_t k = 0; k < 8; ++k) partial[k] += x[i + k] - x[i + k];
  T sum = 0;
  for (std::size_t i = blocked; i < n; ++i) sum += x[i] - x[i];
  for (T v : partial) sum += v;
  return sum == T(0);
}

/// True when every entry of `m` is finite.
template <class T>
bool all_finite(const arma::Mat<T>& m) noexcept {
  return all_finite(m.memptr(), m.n_elem);
}

/// A number printed the shortest way that reads back ("0.001", "1e-08").
using detail::format_number;

/// Throws ConfigError naming `kind` unless `ok`; for hyper-parameter checks at construction.
inline void require(bool ok, const std::string& kind, const std::string& what) {
  if (!ok) throw ConfigError(kind + ": " + what);
}

/// Throws ConfigError unless `state` is a branch whose children are exactly `names`, in order.
/// Allocates nothing unless it throws.
template <class T>
void expect_entries(const Tree<T>& state, std::initializer_list<const char*> names,
                    const Transform& transform) {
  bool ok = !state.is_leaf() && state.size() == names.size();
  std::size_t i = 0;
  for (const char* name : names) {
    if (!ok) break;
    ok = state.name(i++) == name;
  }
  if (ok) return;
  std::string expected, found;
  for (const char* name : names) expected += (expected.empty() ? "" : ", ") + std::string(name);
  if (state.is_leaf()) found = "a tensor";
  for (std::size_t j = 0; j < state.size(); ++j) found += (j ? ", " : "") + state.name(j);
  throw ConfigError("the " + transform.kind() + " state should hold (" + expected + "), found (" +
                    (found.empty() ? "nothing" : found) +
                    "); was this state made by another optimizer's init?");
}

/// Throws ConfigError (path = entry/...) unless `mirror` has the structure of `params`.
template <class T>
void expect_mirror(const Tree<T>& mirror, const Tree<T>& params, const char* entry) {
  if (params.same_structure(mirror)) return;
  try {
    params.check_same_structure(mirror, "optimizer state", entry);
  } catch (const Error& e) {
    throw ConfigError(e.detail() + "; the optimizer state was made for other params", e.path());
  }
  throw ConfigError("the optimizer state does not mirror the params", entry);
}

/// Throws ConfigError (path = entry) unless `node` is a finite 1 × 1 tensor.
template <class T>
void expect_scalar(const Tree<T>& node, const char* entry) {
  if (node.is_leaf() && node.value().n_rows == 1 && node.value().n_cols == 1 &&
      !std::isnan(node.value()(0, 0)))
    return;
  throw ConfigError("expected a 1 × 1 tensor holding a number", entry);
}

/// The whole number in the 1 × 1 tensor `node` (path `entry`), a count; throws ConfigError
/// naming `what` ("the update count") unless it is in [0, 2⁶³), so that it converts to an
/// int64. Allocates nothing unless it throws.
template <class T>
std::int64_t expect_whole_number(const Tree<T>& node, const char* entry, const char* what) {
  expect_scalar(node, entry);
  const T value = node.value()(0, 0);
  if (!(value >= 0 && value < T(0x1p63) && value == std::floor(value)))
    throw ConfigError(std::string(what) + " must be a whole number ≥ 0 (and below 2⁶³), found " +
                          format_number(static_cast<double>(value)),
                      entry);
  return static_cast<std::int64_t>(value);
}

}  // namespace layercache::optim
