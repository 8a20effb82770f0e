// Parameter groups: each part of the params tree updated by its own chain of transforms
// (optax's `partition`, formerly `multi_transform`; PyTorch's param groups). Freezing is one
// case of it: a group whose chain is set_to_zero().
//
//   Optimizer opt = partition({
//       {.name = "encoder", .paths = {"encoder"}, .optimizer = adam({.learning_rate = 1e-4})},
//       {.name = "weights", .paths = {"head/*/weight"}, .optimizer = adamw({.learning_rate = 1e-3})},
//       {.name = "biases", .paths = {"head/*/bias"}, .optimizer = adam({.learning_rate = 1e-3})},
//   });
//
// Every params leaf belongs to exactly one group, chosen by glob patterns of its path
// (path_matches). The state holds one subtree per group, the state of the group's chain for
// the group's params alone, so a checkpoint resumes every group exactly:
//   count                                               (1 × 1)  the shared update count
//   partition/encoder/scale_by_adam/mu/encoder/dense1/weight        the encoder's moments
//   partition/weights/add_decayed_weights                           (empty: stateless)
// docs/optimizers.md, "Parameter groups", has the details.
#pragma once

#include <string>
#include <vector>

#include "layercache/optim/optimizer.hpp"

namespace layercache {

/// One parameter group of partition().
struct ParamGroup {
  /// The group's entry in the optimizer state: non-empty, without '/', unique.
  std::string name;
  /// Glob patterns of the params paths in the group ("encoder", "*/bias"); at least one.
  std::vector<std::string> paths;
  /// The chain that updates the group's params (set_to_zero() keeps them fixed).
  Optimizer optimizer;
};

/// An optimizer that updates each group's params with the group's own chain; every chain
/// sees only its group's params, grads and state, and all share the update count (so the
/// schedules of all groups advance together). Throws ConfigError here for no groups, a name
/// that is empty, holds '/' or is repeated, or a group without patterns. init and every
/// update throw ConfigError naming the path of a params leaf that no group matches or that
/// two groups match (naming both), and naming a group that matches no leaf.
Optimizer partition(std::vector<ParamGroup> groups);

}  // namespace layercache
