// The worker pool of data-parallel training steps: threads that spin for a short while
// after a run (the next step usually follows within a millisecond) and then sleep on a
// condition variable.
#include "worker_pool.hpp"

#include <chrono>

namespace layercache::detail {
namespace {

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

constexpr long worker_spin_us = 500;
constexpr long caller_spin_us = 2000;

}  // namespace

// Spins until value differs from `old`, for at most about spin_us microseconds; then sleeps
// until it does.
template <class V>
void WorkerPool::await_change(const std::atomic<V>& value, V old, long spin_us) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(spin_us);
  for (unsigned i = 1;; ++i) {
    if (value.load(std::memory_order_acquire) != old) return;
    cpu_relax();
    if (i % 256 == 0 && std::chrono::steady_clock::now() > until) break;
  }
  std::unique_lock<std::mutex> lock(sleep_mutex_);
  wake_.wait(lock, [&] { return value.load(std::memory_order_acquire) != old; });
}

// Called after a change a thread may be sleeping on: taking the mutex orders the change
// before any sleeper's last check, so no wake-up is lost.
void WorkerPool::wake_all() {
  { std::lock_guard<std::mutex> lock(sleep_mutex_); }
  wake_.notify_all();
}

WorkerPool::WorkerPool(std::size_t size) : errors_(size == 0 ? 1 : size) {
  threads_.reserve(errors_.size() - 1);
  for (std::size_t i = 1; i < errors_.size(); ++i) threads_.emplace_back([this, i] { work(i); });
}

WorkerPool::~WorkerPool() {
  stop_.store(true, std::memory_order_release);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  wake_all();
  for (auto& t : threads_) t.join();
}

std::exception_ptr WorkerPool::first_error() const noexcept {
  for (const auto& e : errors_)
    if (e) return e;
  return nullptr;
}

void WorkerPool::call(std::size_t index) noexcept {
  try {
    errors_[index] = nullptr;
    call_(task_, index);
  } catch (...) {
    errors_[index] = std::current_exception();
  }
}

void WorkerPool::run_erased(void* task, Trampoline call) {
  task_ = task;
  call_ = call;
  pending_.store(threads_.size(), std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_acq_rel);  // publishes task_ and call_
  wake_all();
  this->call(0);
  const std::size_t left = pending_.load(std::memory_order_acquire);
  if (left != 0) {
    for (std::size_t now = left; now != 0; now = pending_.load(std::memory_order_acquire))
      await_change(pending_, now, caller_spin_us);
  }
}

void WorkerPool::work(std::size_t index) {
  std::uint64_t seen = 0;  // the generation at construction: a run may start before this line
  for (;;) {
    await_change(generation_, seen, worker_spin_us);
    seen = generation_.load(std::memory_order_acquire);
    if (stop_.load(std::memory_order_acquire)) return;
    call(index);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
    wake_all();
  }
}

}  // namespace layercache::detail
