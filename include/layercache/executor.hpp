// Executor: the interface through which layercache runs work on several threads at once
// (docs/training.md). A data-parallel train_step owns one (its worker threads) and hands it to
// Optimizer::update, which splits the update of the params between the threads.
//
// This header is C++17-compatible.
#pragma once

#include <cstddef>

namespace layercache {

/// Runs one task on several threads at once. Implemented by train_step's worker threads;
/// implement it to run layercache's parallel parts on threads of your own.
class Executor {
 public:
  virtual ~Executor() = default;

  /// Number of tasks per run (the threads taking part, the caller's included).
  virtual std::size_t size() const noexcept = 0;
  /// Calls task(context, i) for every i in [0, size()), each on its own thread and at the
  /// same time, and returns when all have returned. The tasks do not throw.
  virtual void run(void (*task)(void* context, std::size_t index), void* context) = 0;
};

}  // namespace layercache
