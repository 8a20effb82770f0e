// Trees of tensors addressed by path (docs/contract.md).
//
// Params, grads, state and optimizer state all use Tree<T>: a node is either a leaf holding
// one arma::Mat<T>, or a branch holding named children in a fixed order. The tree mirrors the
// network, so the dense layer "dense1" inside the network "encoder" owns the leaves
// "encoder/dense1/weight" and "encoder/dense1/bias". Layers without parameters appear as
// empty branches, so two networks of different structure never produce matching trees.
#pragma once

#include <armadillo>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "layercache/errors.hpp"

namespace layercache {

/// A tree of tensors: a leaf holds one matrix; a branch holds named children in order.
template <class T>
class Tree {
 public:
  struct Child;

  /// An empty branch.
  Tree() = default;
  /// A leaf holding `value`.
  explicit Tree(arma::Mat<T> value);

  /// True for a leaf.
  bool is_leaf() const noexcept { return is_leaf_; }
  /// The leaf's tensor; throws ConfigError on a branch.
  arma::Mat<T>& value();
  /// The leaf's tensor; throws ConfigError on a branch.
  const arma::Mat<T>& value() const;

  /// Number of direct children (0 for a leaf).
  std::size_t size() const noexcept { return children_.size(); }
  /// True for a branch without children.
  bool empty() const noexcept { return !is_leaf_ && children_.empty(); }
  /// Name of direct child i; throws ConfigError when i ≥ size().
  const std::string& name(std::size_t i) const { return children_[checked(i)].name; }
  /// Direct child i; throws ConfigError when i ≥ size().
  Tree& child(std::size_t i) { return children_[checked(i)].tree; }
  /// Direct child i; throws ConfigError when i ≥ size().
  const Tree& child(std::size_t i) const { return children_[checked(i)].tree; }
  /// Appends a child; throws ConfigError if the name is taken or this is a leaf.
  Tree& add(std::string name, Tree child);
  /// The direct child called `name`, or nullptr.
  Tree* find(std::string_view name) noexcept;
  /// The direct child called `name`, or nullptr.
  const Tree* find(std::string_view name) const noexcept;
  /// The node at a slash-separated path ("encoder/dense1/weight"); throws ConfigError naming
  /// the missing segment and listing what exists there.
  Tree& at(std::string_view path);
  /// The node at a slash-separated path; throws ConfigError when absent.
  const Tree& at(std::string_view path) const;
  /// True when `path` names a node.
  bool contains(std::string_view path) const noexcept;

  /// Calls f(path, tensor) for every leaf, depth first in order; `prefix` starts the paths.
  void for_each(const std::function<void(const std::string&, const arma::Mat<T>&)>& f,
                const std::string& prefix = {}) const;
  /// Calls f(path, tensor) for every leaf, allowing the tensor to change.
  void for_each(const std::function<void(const std::string&, arma::Mat<T>&)>& f,
                const std::string& prefix = {});
  /// Paths of all leaves, in order.
  std::vector<std::string> paths() const;
  /// Number of leaves.
  std::size_t n_tensors() const noexcept;
  /// Total number of scalars in all leaves.
  std::size_t count() const noexcept;
  /// Bytes held by all leaves.
  std::size_t bytes() const noexcept { return count() * sizeof(T); }
  /// True when both trees have the same names in the same order and leaves of equal shape.
  bool same_structure(const Tree& other) const noexcept;
  /// Throws ConfigError (different names) or ShapeError (different leaf shapes) naming the
  /// first path where `other` differs from this tree. `what` names `other` in the message
  /// ("grads", "params of another network", ...).
  void check_same_structure(const Tree& other, std::string_view what,
                            const std::string& prefix = {}) const;
  /// Bit-for-bit equality of structure and values.
  bool identical(const Tree& other) const noexcept;

 private:
  std::size_t checked(std::size_t i) const {
    if (i >= children_.size()) throw_no_child(i);
    return i;
  }
  [[noreturn]] void throw_no_child(std::size_t i) const;

  bool is_leaf_ = false;
  arma::Mat<T> value_;
  std::vector<Child> children_;
};

/// A named child of a branch.
template <class T>
struct Tree<T>::Child {
  /// The child's name (its path segment).
  std::string name;
  /// The child itself.
  Tree<T> tree;
};

/// Parameters, gradients and state in single precision (the default element type).
using TreeF = Tree<float>;
/// Parameters, gradients and state in double precision.
using TreeD = Tree<double>;

/// A tree of the same structure with every leaf set to zeros of the same shape.
template <class T>
Tree<T> zeros_like(const Tree<T>& tree);

/// A tree of the same structure with every leaf replaced by f(path, leaf).
template <class T, class F>
Tree<T> map(const Tree<T>& tree, F f, const std::string& prefix = {}) {
  if (tree.is_leaf()) return Tree<T>(arma::Mat<T>(f(prefix, tree.value())));
  Tree<T> out;
  for (std::size_t i = 0; i < tree.size(); ++i)
    out.add(tree.name(i), map(tree.child(i), f, join_path(prefix, tree.name(i))));
  return out;
}

/// A tree whose leaves are f(path, a_leaf, b_leaf); throws when the structures differ.
template <class T, class F>
Tree<T> zip(const Tree<T>& a, const Tree<T>& b, F f, const std::string& prefix = {}) {
  if (prefix.empty()) a.check_same_structure(b, "second tree of zip");
  if (a.is_leaf()) return Tree<T>(arma::Mat<T>(f(prefix, a.value(), b.value())));
  Tree<T> out;
  for (std::size_t i = 0; i < a.size(); ++i)
    out.add(a.name(i), zip(a.child(i), b.child(i), f, join_path(prefix, a.name(i))));
  return out;
}

/// The leaves as (path, tensor pointer) pairs, in order. The pointers stay valid while the
/// tree is alive and not restructured.
template <class T>
std::vector<std::pair<std::string, const arma::Mat<T>*>> flatten(const Tree<T>& tree);

/// Converts every leaf to another element type (float ↔ double).
template <class To, class From>
Tree<To> convert(const Tree<From>& tree) {
  if (tree.is_leaf()) return Tree<To>(arma::conv_to<arma::Mat<To>>::from(tree.value()));
  Tree<To> out;
  for (std::size_t i = 0; i < tree.size(); ++i) out.add(tree.name(i), convert<To>(tree.child(i)));
  return out;
}

/// Glob match of a slash-separated path: '*' matches any run of characters (including '/'),
/// '?' matches one character. A pattern that matches a branch also matches every path
/// beneath it ("encoder" and "*/dense1" match "encoder/dense1/weight").
bool path_matches(std::string_view pattern, std::string_view path) noexcept;

extern template class Tree<float>;
extern template class Tree<double>;

}  // namespace layercache
