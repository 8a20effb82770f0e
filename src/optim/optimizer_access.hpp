// Library-internal access to Optimizer (not installed): the data-parallel training step
// checks the summed gradients for NaN and Inf in the same pass that sums them, and then
// updates without the optimizer scanning them a second time.
#pragma once

#include "layercache/executor.hpp"
#include "layercache/optim/optimizer.hpp"
#include "layercache/tree.hpp"

namespace layercache::detail {

struct OptimizerAccess {
  /// optimizer.update(params, grads, state, executor) without the NaN / Inf scan of
  /// `grads`: only for grads the caller has found all finite. Every other check still runs.
  template <class T>
  static double update_with_finite_grads(const Optimizer& optimizer, Tree<T>& params,
                                         const Tree<T>& grads, OptState<T>& state,
                                         Executor& executor);
};

}  // namespace layercache::detail
