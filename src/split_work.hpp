// Splitting the work of one layer call across an Executor's threads (internal): the
// intra-layer parallelism of Context::executor and Needs::executor.
#pragma once

#include <cstddef>

#include "layercache/executor.hpp"

namespace layercache::detail {

/// Below these amounts of work a call runs on the calling thread alone: handing work to
/// the other threads and waiting for them costs a few microseconds, about what a matrix
/// product of this many multiply-adds, or an element-wise pass over this many entries,
/// takes.
inline constexpr double min_split_products = 300e3;
inline constexpr double min_split_elements = 16e3;

/// The executor to split `work` across, or null when it should run on the calling thread
/// (no executor, a one-thread executor, or less work than `min_work`).
inline Executor* splitting(Executor* executor, double work, double min_work) noexcept {
  return executor && executor->size() > 1 && work >= min_work ? executor : nullptr;
}

/// Task `index` of `tasks` takes items [begin, end) of n, in whole blocks of `block` items
/// (the vector width of the BLAS kernels) except for the last, so no kernel runs on a
/// ragged edge in the middle of the range. Some tasks may get nothing (begin == end).
struct Share {
  std::size_t begin, end;
  Share(std::size_t n, std::size_t block, std::size_t index, std::size_t tasks) noexcept {
    const std::size_t blocks = (n + block - 1) / block;
    begin = blocks * index / tasks * block;
    end = blocks * (index + 1) / tasks * block;
    if (begin > n) begin = n;
    if (end > n) end = n;
  }
};

/// Calls task(i, tasks) for every i in [0, tasks) on the executor's threads; task must not
/// throw.
template <class F>
void run_on(Executor& executor, F& task) {
  struct Job {
    F* task;
    std::size_t tasks;
  } job{&task, executor.size()};
  executor.run([](void* context, std::size_t i) {
    const Job& j = *static_cast<const Job*>(context);
    (*j.task)(i, j.tasks);
  }, &job);
}

}  // namespace layercache::detail
