// An Executor written as a user would write one, for the tests: `size` tasks per run, task
// 0 on the calling thread and the others on threads started for the run. Counts its runs.
#pragma once

#include <atomic>
#include <thread>
#include <vector>

#include "layercache/executor.hpp"

class CountingExecutor final : public layercache::Executor {
 public:
  explicit CountingExecutor(std::size_t size) : size_(size) {}
  std::size_t size() const noexcept override { return size_; }
  void run(void (*task)(void*, std::size_t), void* context) override {
    ++runs;
    std::vector<std::thread> threads;
    for (std::size_t i = 1; i < size_; ++i) threads.emplace_back(task, context, i);
    task(context, 0);
    for (auto& t : threads) t.join();
  }
  std::atomic<int> runs{0};

 private:
  std::size_t size_;
};
