// A small pool of persistent worker threads for data-parallel training steps (internal).
//
//   WorkerPool pool(2);                       // the caller plus one worker thread
//   pool.run([&](std::size_t i) { ... });    // i = 0 on the caller, 1.. on the workers
//
// run() returns when every task is done; an exception thrown by task i is caught and kept
// in error(i) (the other tasks still run), so the caller decides what to do with it. A run
// allocates nothing: the task is passed by reference and the threads wait on atomics,
// spinning briefly before they sleep on a condition variable, because training steps follow each other within a
// millisecond and a sleeping thread takes tens of microseconds to wake.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "layercache/executor.hpp"

namespace layercache::detail {

class WorkerPool final : public Executor {
 public:
  /// A pool running `size` tasks per run: one on the calling thread, size − 1 on workers.
  explicit WorkerPool(std::size_t size);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  /// Tasks per run (the caller included).
  std::size_t size() const noexcept override { return errors_.size(); }
  /// Executor::run: task(context, i) for every i, i = 0 on the calling thread.
  void run(void (*task)(void*, std::size_t), void* context) override { run_erased(context, task); }

  /// Calls task(i) for every i in [0, size()) at the same time, task(0) on the calling
  /// thread; returns when all have finished. Not reentrant: one run at a time.
  template <class F>
  void run(F& task) {
    run_erased(&task, [](void* f, std::size_t i) { (*static_cast<F*>(f))(i); });
  }

  /// What task i of the last run threw (null when it returned normally).
  const std::exception_ptr& error(std::size_t i) const { return errors_.at(i); }
  /// What the first task of the last run that threw threw; null when none did.
  std::exception_ptr first_error() const noexcept;

 private:
  using Trampoline = void (*)(void*, std::size_t);
  void run_erased(void* task, Trampoline call);
  void work(std::size_t index);
  void call(std::size_t index) noexcept;
  template <class V>
  void await_change(const std::atomic<V>& value, V old, long spin_us);
  void wake_all();

  std::vector<std::thread> threads_;
  std::vector<std::exception_ptr> errors_;
  void* task_ = nullptr;
  Trampoline call_ = nullptr;
  std::atomic<std::uint64_t> generation_{0};  // bumped by run(); workers wait for a change
  std::atomic<std::size_t> pending_{0};       // workers still busy with this run
  std::atomic<bool> stop_{false};
  std::mutex sleep_mutex_;  // guards nothing but the sleeping: a change is made, then
  std::condition_variable wake_;  // the mutex is taken and released, then everyone is woken
};

}  // namespace layercache::detail
