// Checkpoints: named trees of tensors saved to and loaded from HDF5 files (docs/checkpoints.md).
//
// A checkpoint holds any number of named trees (params, state, optimizer state, ...) and a
// little bookkeeping (epoch, step, a free-form metadata string). On disk it is a plain HDF5
// file: one group per branch, one 2-D dataset per tensor, e.g. /params/dense1/weight, stored
// row-major with the matrix's own shape (n_rows, n_cols), so h5py, MATLAB or Julia can read
// it without this library. docs/checkpoints.md describes the format in full.
//
// Saving is atomic: the file is written under a temporary name in the same directory,
// flushed to disk and renamed over the target, so a crash or a failed write never destroys
// the last good checkpoint. Loading builds new trees (or checks and then fills an existing
// one), so a bad file never leaves a tree half-updated. HDF5 stays an implementation
// detail: this header does not include hdf5.h. The templates are compiled once, in
// src/checkpoint.cpp, for float and double.
//
//   save_checkpoint("run/ckpt.h5", {{"params", &params}, {"optimizer", &opt_state.tree()}},
//                   {.epoch = 3, .step = 1200});
//   Checkpoint<float> ckpt = load_checkpoint<float>("run/ckpt.h5");
//   load_into("run/ckpt.h5", "params", params);   // checks the structure first
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "layercache/tree.hpp"

namespace layercache {

template <class T>
class OptState;  // layercache/optim/optimizer.hpp

/// Bookkeeping stored next to the trees of a checkpoint.
struct CheckpointInfo {
  /// Epochs completed when the checkpoint was written.
  std::int64_t epoch = 0;
  /// Optimizer steps (updates) applied when the checkpoint was written.
  std::int64_t step = 0;
  /// Free-form text for the user: a run name, a JSON blob of hyper-parameters, ...
  std::string metadata;
};

/// The named trees to save, in order, e.g. {{"params", &params}, {"state", &state}}. The
/// pointers are only read during the call.
template <class T>
using NamedTrees = std::vector<std::pair<std::string, const Tree<T>*>>;

/// Everything a checkpoint file holds.
template <class T>
struct Checkpoint {
  /// A branch with one child per saved tree, in the order they were saved:
  /// trees.at("params"), trees.at("optimizer/scale_by_adam/mu"), ...
  Tree<T> trees;
  /// The epoch, step and metadata saved with the trees.
  CheckpointInfo info;
};

/// The version of the file format this library writes (the `format_version` attribute).
/// Files of this version or older are read; newer ones are rejected with a DataError.
inline constexpr std::int64_t checkpoint_format_version = 1;

/// Saves the named trees and `info` to an HDF5 file at `path`, atomically (see the top of
/// this file). Tree names must be unique, non-empty, free of '/' and not "."; a violation
/// or a null pointer throws ConfigError before anything touches the disk. Any failure to
/// create, write, flush or rename the file throws IoError naming the file; the previous
/// file at `path` is then left as it was and no temporary file remains.
void save_checkpoint(const std::string& path, const NamedTrees<float>& trees,
                     const CheckpointInfo& info = {});
/// Saves double-precision trees; see the float overload.
void save_checkpoint(const std::string& path, const NamedTrees<double>& trees,
                     const CheckpointInfo& info = {});

/// Loads every tree of the checkpoint at `path`. Throws
///   - IoError when the file does not exist or cannot be read;
///   - DataError when it is not HDF5, is truncated or corrupt (including values, names or
///     shapes that fail their stored CRC-32), is not a layercache checkpoint, or has a
///     newer format version;
///   - ConfigError when its element type is not T (float32 for float, float64 for double);
///     no silent conversion: load with the stored type and use convert<T>() if you mean it.
/// Every message names the file (and the dataset, when one is to blame).
template <class T>
Checkpoint<T> load_checkpoint(const std::string& path);

/// Saves one tree under the name "params": save_checkpoint(path, {{"params", &params}}, info).
template <class T>
void save_params(const std::string& path, const Tree<T>& params, const CheckpointInfo& info = {});

/// Loads the tree called "params" (ConfigError when the checkpoint has none).
template <class T>
Tree<T> load_params(const std::string& path);

/// Reads the tree called `name` from the checkpoint at `path` into `into`, whose structure
/// it must match exactly: the same names in the same order and leaves of the same shape.
/// A mismatch throws ConfigError (names) or ShapeError (shapes) whose path() is the first
/// differing path in `into` ("dense1/weight"). On any error `into` is unchanged; on success
/// the tensors are overwritten in place, so pointers into `into` stay valid. File errors
/// are those of load_checkpoint. For an OptState<T>, the overload below is chosen.
template <class T>
void load_into(const std::string& path, const std::string& name, Tree<T>& into);

/// load_into for an optimizer state: reads into `into.tree()`, so the next
/// Optimizer::update checks the values it read (no NaN or Inf, no negative second moment,
/// ...) once before it changes anything, as for a state wrapped with OptState<T>(tree).
template <class T>
void load_into(const std::string& path, const std::string& name, OptState<T>& into) {
  load_into(path, name, into.tree());
}

}  // namespace layercache
