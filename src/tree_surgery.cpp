// Tree surgery by path: select, merge, graft.
#include "layercache/tree_surgery.hpp"

#include <string>
#include <utility>

namespace layercache {
namespace {

// The selected leaves beneath `tree` (whose path is `prefix`); marks the patterns used.
template <class T>
Tree<T> select_beneath(const Tree<T>& tree, const std::vector<std::string>& patterns,
                       std::vector<bool>& used, const std::string& prefix) {
  Tree<T> out;
  for (std::size_t i = 0; i < tree.size(); ++i) {
    const std::string path = join_path(prefix, tree.name(i));
    const Tree<T>& child = tree.child(i);
    if (child.is_leaf()) {
      bool selected = false;
      for (std::size_t p = 0; p < patterns.size(); ++p)
        if (path_matches(patterns[p], path)) selected = used[p] = true;
      if (selected) out.add(tree.name(i), child);
    } else if (Tree<T> part = select_beneath(child, patterns, used, path); part.size() > 0) {
      out.add(tree.name(i), std::move(part));
    }
  }
  return out;
}

template <class T>
std::string path_list(const Tree<T>& tree) {
  std::string out;
  for (const auto& path : tree.paths()) out += (out.empty() ? "" : ", ") + path;
  return out.empty() ? "none" : out;
}

template <class T>
Tree<T> merge_at(const Tree<T>& first, const Tree<T>& second, const MergeOptions& options,
                 const std::string& path) {
  if (first.is_leaf() || second.is_leaf()) {
    if (first.is_leaf() != second.is_leaf())
      throw ConfigError(std::string("cannot merge: a ") + (first.is_leaf() ? "tensor" : "branch") +
                            " in the first tree, a " + (second.is_leaf() ? "tensor" : "branch") +
                            " in the second",
                        path);
    switch (options.on_conflict) {
      case MergeConflict::keep_first: return first;
      case MergeConflict::take_second: return second;
      case MergeConflict::error: break;
    }
    throw ConfigError("both trees hold this tensor; choose MergeOptions::on_conflict "
                      "(keep_first or take_second) to merge them anyway",
                      path);
  }
  Tree<T> out;
  for (std::size_t i = 0; i < first.size(); ++i) {
    const Tree<T>* other = second.find(first.name(i));
    out.add(first.name(i), other ? merge_at(first.child(i), *other, options,
                                            join_path(path, first.name(i)))
                                 : first.child(i));
  }
  for (std::size_t i = 0; i < second.size(); ++i)
    if (!first.find(second.name(i))) out.add(second.name(i), second.child(i));
  return out;
}

}  // namespace

template <class T>
Tree<T> select(const Tree<T>& tree, const std::vector<std::string>& patterns) {
  std::vector<bool> used(patterns.size(), false);
  Tree<T> out = tree.is_leaf() ? Tree<T>() : select_beneath(tree, patterns, used, {});
  for (std::size_t p = 0; p < patterns.size(); ++p)
    if (!used[p])
      throw ConfigError("select: the pattern '" + patterns[p] +
                        "' matches no tensor; the tree's paths are: " + path_list(tree));
  return out;
}

template <class T>
Tree<T> merge(const Tree<T>& first, const Tree<T>& second, const MergeOptions& options) {
  return merge_at(first, second, options, {});
}

template <class T>
void graft(Tree<T>& into, std::string_view path, const Tree<T>& subtree) {
  Tree<T>& target = into.at(path);  // ConfigError naming the missing segment
  target.check_same_structure(subtree, "grafted subtree", std::string(path));
  Tree<T> copy = subtree;  // copied first: a failed copy leaves `into` as it was
  target = std::move(copy);
}

template Tree<float> select(const Tree<float>&, const std::vector<std::string>&);
template Tree<double> select(const Tree<double>&, const std::vector<std::string>&);
template Tree<float> merge(const Tree<float>&, const Tree<float>&, const MergeOptions&);
template Tree<double> merge(const Tree<double>&, const Tree<double>&, const MergeOptions&);
template void graft(Tree<float>&, std::string_view, const Tree<float>&);
template void graft(Tree<double>&, std::string_view, const Tree<double>&);

}  // namespace layercache
