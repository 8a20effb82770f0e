// Parameter groups: partition() runs each group's chain on the group's part of the trees.
//
// Each call finds the group of every params leaf (by path, in leaf order), then, group by
// group, builds the group's part of the params (a copy), of the update (the buffer's
// matrices swapped in and back out, so nothing is copied) and hands them to the group's
// transforms with the group's subtree of the state.
#include "layercache/optim/partition.hpp"

#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tree_walk.hpp"

namespace layercache {
namespace {

constexpr std::size_t no_group = static_cast<std::size_t>(-1);

// The part of `tree` whose leaves belong to group g (group_of lists every leaf's group in
// depth-first order; `leaf` counts the leaves walked so far). Leaves are copied when
// `copy_values`, and empty otherwise (to be filled by exchange). Branches without a leaf
// of the group are left out.
template <class T>
Tree<T> part_of(const Tree<T>& tree, const std::vector<std::size_t>& group_of, std::size_t g,
                std::size_t& leaf, bool copy_values) {
  Tree<T> out;
  for (std::size_t i = 0; i < tree.size(); ++i) {
    const Tree<T>& child = tree.child(i);
    if (child.is_leaf()) {
      if (group_of[leaf++] == g)
        out.add(tree.name(i), copy_values ? child : Tree<T>(arma::Mat<T>()));
    } else if (Tree<T> part = part_of(child, group_of, g, leaf, copy_values); part.size() > 0) {
      out.add(tree.name(i), std::move(part));
    }
  }
  return out;
}

// Swaps the matrices of group g's leaves between `tree` and its part `part` (made by
// part_of with the same group_of); calling it twice restores both.
template <class T>
void exchange(Tree<T>& tree, Tree<T>& part, const std::vector<std::size_t>& group_of,
              std::size_t g, std::size_t& leaf) {
  for (std::size_t i = 0; i < tree.size(); ++i) {
    Tree<T>& child = tree.child(i);
    Tree<T>* mine = part.find(tree.name(i));
    if (child.is_leaf()) {
      if (group_of[leaf++] == g) child.value().swap(mine->value());
    } else if (mine) {
      exchange(child, *mine, group_of, g, leaf);
    } else {
      leaf += child.n_tensors();
    }
  }
}

class Partition : public TransformImpl<Partition> {
 public:
  explicit Partition(std::vector<ParamGroup> groups) : groups_(std::move(groups)) {
    if (groups_.empty()) throw ConfigError("partition: needs at least one parameter group");
    for (std::size_t g = 0; g < groups_.size(); ++g) {
      const std::string& name = groups_[g].name;
      if (name.empty() || name.find('/') != std::string::npos)
        throw ConfigError("partition: a group name must be non-empty and contain no '/', got '" +
                          name + "'");
      for (std::size_t h = 0; h < g; ++h)
        if (groups_[h].name == name)
          throw ConfigError("partition: two parameter groups are called '" + name + "'");
      if (groups_[g].paths.empty())
        throw ConfigError("partition: the group '" + name + "' has no path patterns");
    }
  }

  std::string kind() const override { return "partition"; }
  std::string describe() const override {
    std::string out = "partition(";
    for (std::size_t g = 0; g < groups_.size(); ++g) {
      out += (g ? ", " : "") + groups_[g].name + " [";
      for (std::size_t p = 0; p < groups_[g].paths.size(); ++p)
        out += (p ? ", " : "") + groups_[g].paths[p];
      out += "]: " + groups_[g].optimizer.describe();
    }
    return out + ")";
  }

  template <class T>
  Tree<T> init_t(const Tree<T>& params) const {
    const std::vector<std::size_t> group_of = groups_of(params);
    Tree<T> state;
    for (std::size_t g = 0; g < groups_.size(); ++g) {
      std::size_t leaf = 0;
      const Tree<T> part = part_of(params, group_of, g, leaf, true);
      const Optimizer& chain = groups_[g].optimizer;
      Tree<T> entries;
      for (std::size_t i = 0; i < chain.transforms().size(); ++i)
        entries.add(chain.entry_names()[i], chain.transforms()[i]->init(part));
      state.add(groups_[g].name, std::move(entries));
    }
    return state;
  }

  template <class T>
  void check_t(const Tree<T>& state, const Tree<T>& params, std::int64_t step) const {
    expect_groups(state);
    const std::vector<std::size_t> group_of = groups_of(params);
    for (std::size_t g = 0; g < groups_.size(); ++g) {
      std::size_t leaf = 0;
      const Tree<T> part = part_of(params, group_of, g, leaf, true);
      for_each_transform(g, state, [&](const Transform& t, const Tree<T>& entry) {
        t.check(entry, part, step);
      });
    }
  }

  template <class T>
  void check_values_t(const Tree<T>& state) const {
    for (std::size_t g = 0; g < groups_.size(); ++g)
      for_each_transform(g, state, [](const Transform& t, const Tree<T>& entry) {
        t.check_values(entry);
      });
  }

  template <class T>
  void report_t(Tree<T>& state, double value) const {
    expect_groups(state);
    for (std::size_t g = 0; g < groups_.size(); ++g)
      for_each_transform(g, state, [&](const Transform& t, Tree<T>& entry) {
        t.report(entry, value);
      });
  }

  template <class T>
  void update_t(Tree<T>& updates, Tree<T>& state, const Tree<T>& params, std::int64_t step) const {
    const std::vector<std::size_t> group_of = groups_of(params);  // checked: does not throw
    for (std::size_t g = 0; g < groups_.size(); ++g) {
      std::size_t leaf = 0;
      const Tree<T> part = part_of(params, group_of, g, leaf, true);
      leaf = 0;
      Tree<T> group_updates = part_of(params, group_of, g, leaf, false);
      leaf = 0;
      exchange(updates, group_updates, group_of, g, leaf);
      const Optimizer& chain = groups_[g].optimizer;
      Tree<T>& entries = state.child(g);
      for (std::size_t i = 0; i < chain.transforms().size(); ++i)
        chain.transforms()[i]->update(group_updates, entries.child(i), part, step);
      leaf = 0;
      exchange(updates, group_updates, group_of, g, leaf);
    }
  }

 private:
  // The group of every params leaf, in leaf order; throws ConfigError naming a leaf in no
  // group or in two, and a group without a leaf.
  template <class T>
  std::vector<std::size_t> groups_of(const Tree<T>& params) const {
    std::vector<std::size_t> out;
    std::vector<bool> used(groups_.size(), false);
    params.for_each([&](const std::string& path, const arma::Mat<T>&) {
      std::size_t found = no_group;
      for (std::size_t g = 0; g < groups_.size(); ++g) {
        for (const std::string& pattern : groups_[g].paths) {
          if (!path_matches(pattern, path)) continue;
          if (found != no_group && found != g)
            throw ConfigError("this param is in two parameter groups of the partition, '" +
                                  groups_[found].name + "' and '" + groups_[g].name +
                                  "' (pattern '" + pattern + "'); each must be in exactly one",
                              path);
          found = g;
        }
      }
      if (found == no_group)
        throw ConfigError("this param is in no parameter group of the partition (the groups are " +
                              group_list() + ")",
                          path);
      used[found] = true;
      out.push_back(found);
    });
    for (std::size_t g = 0; g < groups_.size(); ++g)
      if (!used[g])
        throw ConfigError("the parameter group '" + groups_[g].name +
                          "' matches no param (the params are: " + path_list(params) + ")");
    return out;
  }

  std::string group_list() const {
    std::string out;
    for (const auto& group : groups_) {
      out += (out.empty() ? "" : ", ") + group.name + " [";
      for (std::size_t p = 0; p < group.paths.size(); ++p) out += (p ? ", " : "") + group.paths[p];
      out += "]";
    }
    return out;
  }

  template <class T>
  static std::string path_list(const Tree<T>& tree) {
    std::string out;
    for (const auto& path : tree.paths()) out += (out.empty() ? "" : ", ") + path;
    return out.empty() ? "none" : out;
  }

  // Throws ConfigError unless the state holds one entry per group, in order, each with one
  // entry per transform of the group's chain.
  template <class T>
  void expect_groups(const Tree<T>& state) const {
    bool ok = !state.is_leaf() && state.size() == groups_.size();
    for (std::size_t g = 0; ok && g < groups_.size(); ++g) {
      const Tree<T>& entries = state.child(g);
      const auto& names = groups_[g].optimizer.entry_names();
      ok = state.name(g) == groups_[g].name && !entries.is_leaf() && entries.size() == names.size();
      for (std::size_t i = 0; ok && i < names.size(); ++i) ok = entries.name(i) == names[i];
    }
    if (ok) return;
    std::string expected, found = state.is_leaf() ? "a tensor" : "";
    for (const auto& group : groups_) expected += (expected.empty() ? "" : ", ") + group.name;
    for (std::size_t i = 0; i < state.size(); ++i) found += (i ? ", " : "") + state.name(i);
    throw ConfigError("the partition state should hold the groups (" + expected +
                      ") with their chains' entries, found (" +
                      (found.empty() ? "nothing" : found) +
                      "); was this state made by another optimizer's init?");
  }

  // f(transform, its state entry) for every transform of group g's chain; errors get the
  // path "group/entry/...".
  template <class S, class F>
  void for_each_transform(std::size_t g, S& state, F f) const {
    const Optimizer& chain = groups_[g].optimizer;
    for (std::size_t i = 0; i < chain.transforms().size(); ++i) {
      try {
        f(*chain.transforms()[i], state.child(g).child(i));
      } catch (Error& e) {
        e.prepend_path(chain.entry_names()[i]);
        e.prepend_path(groups_[g].name);
        throw;
      }
    }
  }

  std::vector<ParamGroup> groups_;
};

}  // namespace

Optimizer partition(std::vector<ParamGroup> groups) {
  return Optimizer(std::make_shared<const Partition>(std::move(groups)));
}

}  // namespace layercache
