// Heap-allocation counter for the allocation tests and the benchmarks: counts every operator new and malloc-family call while enabled.
//
// Why both: C++ containers allocate through operator new, but Armadillo's arma::memory::acquire
// calls posix_memalign (or malloc) directly, and libtorch's CPU allocator uses posix_memalign
// too. alloc_counter.cpp therefore replaces
//   * all global operator new / delete forms (plain, array, nothrow, sized, aligned), and
//   * malloc, calloc, realloc, free, posix_memalign, aligned_alloc, memalign, valloc, pvalloc
//     (glibc documents this replacement; see "Replacing malloc" in the glibc manual),
// all forwarding to glibc's own allocator through its exported __libc_* entry points. Because
// the replacements are defined in the executable, they interpose for every shared library the
// process loads (Armadillo, OpenBLAS, libtorch), so nothing slips past the count.
//
// The replacements only work when alloc_counter.cpp's object file is linked into the
// executable; the top-level meson.build links it with link_whole (alloc_counter_dep) for that
// reason.
//
// Counting is off by default, costs one relaxed atomic load per allocation when off, and is
// process-wide (all threads): a "zero allocations per training step" claim must hold for BLAS
// worker threads too. Do not call things that allocate themselves (printing, reading
// /proc/self/status) inside a counted region.
//
// Under AddressSanitizer or ThreadSanitizer (GCC's __SANITIZE_ADDRESS__, __SANITIZE_THREAD__),
// which replace malloc themselves, nothing is replaced: counts() stays zero and available()
// is false, so a caller can skip its check.
#pragma once

#include <cstdint>

namespace lcbench::alloc {

struct Counts {
  std::uint64_t news = 0;     // operator new / new[] calls (all forms)
  std::uint64_t mallocs = 0;  // direct malloc-family calls: malloc, calloc, realloc, posix_memalign, aligned_alloc, memalign, valloc, pvalloc
  std::uint64_t frees = 0;    // operator delete / delete[] and free of a non-null pointer
  std::uint64_t bytes = 0;    // bytes requested by the counted allocations
  // Every heap allocation, however it was requested. operator new is forwarded straight to
  // glibc (not to the replaced malloc), so nothing is counted twice.
  std::uint64_t allocations() const { return news + mallocs; }
};

bool available();  // whether allocations are counted in this build (false under AddressSanitizer)
void enable();     // start counting (counters keep their values)
void disable();    // stop counting
void reset();      // zero all counters
bool enabled();
Counts counts();   // snapshot

// Resets, counts while alive, and stops on destruction:
//   lcbench::alloc::Scope s;  train_step(...);  auto c = s.counts();
class Scope {
 public:
  Scope() { reset(); enable(); }
  ~Scope() { disable(); }
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;
  Counts counts() const { return lcbench::alloc::counts(); }
};

}  // namespace lcbench::alloc
