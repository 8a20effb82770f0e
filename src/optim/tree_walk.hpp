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
template <class T>
double sum_of_squares(const arma::Mat<T>& m) noexcept {
  double sum = 0.0;
  const T* x = m.memptr();
  for (std::size_t i = 0; i < m.n_elem; ++i) sum += static_cast<double>(x[i]) * x[i];
  return sum;
}

/// A number printed the shortest way that reads back ("0.001", "1e-08").
inline std::string number(double value) {
  std::ostringstream out;
  out.precision(6);
  out << value;
  return out.str();
}

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

}  // namespace layercache::optim
