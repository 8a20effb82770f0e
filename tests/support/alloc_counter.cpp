// Replacement global operator new/delete and malloc family that count heap allocations (see alloc_counter.hpp).
#include "alloc_counter.hpp"

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <new>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
// AddressSanitizer and ThreadSanitizer replace malloc and operator new with their own;
// memory from glibc's allocator would reach their free, and ThreadSanitizer's runtime
// allocates before it can run instrumented code. This build replaces nothing and counts
// nothing.
namespace lcbench::alloc {
bool available() { return false; }
void enable() {}
void disable() {}
bool enabled() { return false; }
void reset() {}
Counts counts() { return {}; }
}  // namespace lcbench::alloc
#else
// glibc's own allocator entry points (exported since GLIBC_2.2.5). Forwarding to these rather
// than to dlsym(RTLD_NEXT, "malloc") avoids the bootstrap problem of dlsym itself allocating.
extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void __libc_free(void*);
void* __libc_memalign(std::size_t, std::size_t);
void* __libc_valloc(std::size_t);
void* __libc_pvalloc(std::size_t);
}

namespace {

// Constant-initialised, so they are valid before any constructor runs (the dynamic loader and
// static initialisers of other libraries allocate before main).
constinit std::atomic<bool> g_enabled{false};
constinit std::atomic<std::uint64_t> g_news{0};
constinit std::atomic<std::uint64_t> g_mallocs{0};
constinit std::atomic<std::uint64_t> g_frees{0};
constinit std::atomic<std::uint64_t> g_bytes{0};

inline void count_new(std::size_t n) noexcept {
  if (g_enabled.load(std::memory_order_relaxed)) {
    g_news.fetch_add(1, std::memory_order_relaxed);
    g_bytes.fetch_add(n, std::memory_order_relaxed);
  }
}

inline void count_malloc(std::size_t n) noexcept {
  if (g_enabled.load(std::memory_order_relaxed)) {
    g_mallocs.fetch_add(1, std::memory_order_relaxed);
    g_bytes.fetch_add(n, std::memory_order_relaxed);
  }
}

inline void count_free(void* p) noexcept {
  if (p && g_enabled.load(std::memory_order_relaxed)) g_frees.fetch_add(1, std::memory_order_relaxed);
}

// operator new semantics: retry through the new-handler, throw bad_alloc when there is none.
void* new_impl(std::size_t n) {
  count_new(n);
  if (n == 0) n = 1;
  for (;;) {
    if (void* p = __libc_malloc(n)) return p;
    std::new_handler h = std::get_new_handler();
    if (!h) throw std::bad_alloc();
    h();
  }
}

void* new_aligned_impl(std::size_t n, std::align_val_t al) {
  count_new(n);
  if (n == 0) n = 1;
  auto a = static_cast<std::size_t>(al);
  if (a < sizeof(void*)) a = sizeof(void*);
  for (;;) {
    if (void* p = __libc_memalign(a, n)) return p;
    std::new_handler h = std::get_new_handler();
    if (!h) throw std::bad_alloc();
    h();
  }
}

void delete_impl(void* p) noexcept {
  count_free(p);
  __libc_free(p);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Public API

namespace lcbench::alloc {

bool available() { return true; }
void enable() { g_enabled.store(true, std::memory_order_seq_cst); }
void disable() { g_enabled.store(false, std::memory_order_seq_cst); }
bool enabled() { return g_enabled.load(std::memory_order_seq_cst); }

void reset() {
  g_news.store(0);
  g_mallocs.store(0);
  g_frees.store(0);
  g_bytes.store(0);
}

Counts counts() {
  Counts c;
  c.news = g_news.load();
  c.mallocs = g_mallocs.load();
  c.frees = g_frees.load();
  c.bytes = g_bytes.load();
  return c;
}

}  // namespace lcbench::alloc

// ---------------------------------------------------------------------------------------------
// Global operator new / delete: every replaceable form ([new.delete] in the standard).

void* operator new(std::size_t n) { return new_impl(n); }
void* operator new[](std::size_t n) { return new_impl(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try { return new_impl(n); } catch (...) { return nullptr; }
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  try { return new_impl(n); } catch (...) { return nullptr; }
}
void* operator new(std::size_t n, std::align_val_t a) { return new_aligned_impl(n, a); }
void* operator new[](std::size_t n, std::align_val_t a) { return new_aligned_impl(n, a); }
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  try { return new_aligned_impl(n, a); } catch (...) { return nullptr; }
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  try { return new_aligned_impl(n, a); } catch (...) { return nullptr; }
}

void operator delete(void* p) noexcept { delete_impl(p); }
void operator delete[](void* p) noexcept { delete_impl(p); }
void operator delete(void* p, std::size_t) noexcept { delete_impl(p); }
void operator delete[](void* p, std::size_t) noexcept { delete_impl(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { delete_impl(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { delete_impl(p); }
void operator delete(void* p, std::align_val_t) noexcept { delete_impl(p); }
void operator delete[](void* p, std::align_val_t) noexcept { delete_impl(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { delete_impl(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { delete_impl(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { delete_impl(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { delete_impl(p); }

// ---------------------------------------------------------------------------------------------
// malloc family. Defined in the executable, these interpose for every shared library (glibc
// resolves its own internal malloc calls through the same symbols, as its manual documents).

extern "C" {

void* malloc(std::size_t n) noexcept {
  count_malloc(n);
  return __libc_malloc(n);
}

void* calloc(std::size_t count, std::size_t size) noexcept {
  count_malloc(count * size);  // overflow is glibc's to report; the byte tally is only informative
  return __libc_calloc(count, size);
}

void* realloc(void* p, std::size_t n) noexcept {
  // realloc(p, 0) frees (glibc), realloc(nullptr, n) allocates; any other call may move the
  // block, so it is counted as an allocation too: a steady-state step should make none.
  if (p && n == 0) count_free(p);
  else count_malloc(n);
  return __libc_realloc(p, n);
}

void free(void* p) noexcept {
  count_free(p);
  __libc_free(p);
}

int posix_memalign(void** out, std::size_t alignment, std::size_t n) noexcept {
  // Same argument checks as glibc: a power of two that is a multiple of sizeof(void*).
  if (alignment % sizeof(void*) != 0 || (alignment & (alignment - 1)) != 0 || alignment == 0) return EINVAL;
  count_malloc(n);
  void* p = __libc_memalign(alignment, n);
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}

void* aligned_alloc(std::size_t alignment, std::size_t n) noexcept {
  count_malloc(n);
  return __libc_memalign(alignment, n);
}

void* memalign(std::size_t alignment, std::size_t n) noexcept {
  count_malloc(n);
  return __libc_memalign(alignment, n);
}

void* valloc(std::size_t n) noexcept {
  count_malloc(n);
  return __libc_valloc(n);
}

void* pvalloc(std::size_t n) noexcept {
  count_malloc(n);
  return __libc_pvalloc(n);
}

}  // extern "C"

#endif  // __SANITIZE_ADDRESS__ || __SANITIZE_THREAD__
