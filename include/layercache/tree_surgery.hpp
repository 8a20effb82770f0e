// Tree surgery by path (docs/trees.md): select the part of a tree that glob patterns match,
// merge two trees, and graft a subtree into a tree with a structure check — e.g. moving a
// trained encoder into a new network:
//
//   graft(classifier_params, "encoder", autoencoder_params.at("encoder"));
//
// Plain assignment (`clf.at("encoder") = ae.at("encoder")`) works too but checks nothing;
// graft checks first that the subtree has exactly the target's paths and shapes, and changes
// nothing when it does not.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "layercache/tree.hpp"

namespace layercache {

/// The leaves of `tree` whose paths match any of the glob `patterns` (path_matches: a
/// pattern naming a branch takes everything beneath it), with the branches leading to them,
/// in the tree's order. Branches holding no selected leaf are left out, so the result of
/// select(params, {"*/bias"}) holds only biases. Throws ConfigError naming a pattern that
/// matches no leaf (a typo would otherwise select nothing) and listing the tree's paths.
template <class T>
Tree<T> select(const Tree<T>& tree, const std::vector<std::string>& patterns);

/// What merge does with a leaf present in both trees.
enum class MergeConflict {
  /// Throw ConfigError naming the path (the default: no silent overwrite).
  error,
  /// Keep the first tree's leaf.
  keep_first,
  /// Take the second tree's leaf.
  take_second,
};

/// Options of merge.
struct MergeOptions {
  /// What to do with a leaf present in both trees.
  MergeConflict on_conflict = MergeConflict::error;
};

/// The union of `first` and `second`: first's entries in their order, then the entries only
/// second has; branches present in both are merged recursively. A path that is a leaf in one
/// tree and a branch in the other always throws ConfigError naming it; a leaf present in both
/// is resolved by options.on_conflict. Inverse of select: merging the selections of disjoint
/// pattern sets that together cover a tree gives its leaves back (in an order that may
/// differ from the original).
template <class T>
Tree<T> merge(const Tree<T>& first, const Tree<T>& second, const MergeOptions& options = {});

/// Replaces the subtree of `into` at `path` ("" for the whole tree) with a copy of
/// `subtree`, after checking that `subtree` has exactly the paths and leaf shapes of what it
/// replaces: a different entry throws ConfigError and a different shape ShapeError, each
/// with the full path in `into` ("encoder/dense1/weight: expected (64 × 784), found
/// (32 × 784) in the grafted subtree"). A missing `path` throws ConfigError. On any error
/// `into` is unchanged.
template <class T>
void graft(Tree<T>& into, std::string_view path, const Tree<T>& subtree);

extern template Tree<float> select(const Tree<float>&, const std::vector<std::string>&);
extern template Tree<double> select(const Tree<double>&, const std::vector<std::string>&);
extern template Tree<float> merge(const Tree<float>&, const Tree<float>&, const MergeOptions&);
extern template Tree<double> merge(const Tree<double>&, const Tree<double>&, const MergeOptions&);
extern template void graft(Tree<float>&, std::string_view, const Tree<float>&);
extern template void graft(Tree<double>&, std::string_view, const Tree<double>&);

}  // namespace layercache
