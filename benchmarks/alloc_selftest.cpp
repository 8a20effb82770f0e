// Self-test for alloc_counter: proves Armadillo's, the C++ runtime's and libc's allocations are all counted.
//
// Exit status 0 when every check passes. Also prints, for information, how many allocations a
// few Armadillo GEMM expressions make when the destination already has the right size, because
// "a steady-state training step allocates nothing" depends on exactly that.
#include "alloc_counter.hpp"

#include <armadillo>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

extern "C" int openblas_get_num_threads(void);

namespace {

int failures = 0;

void check(bool ok, const char* what, const lcbench::alloc::Counts& c) {
  std::printf("%s %-52s news=%llu mallocs=%llu frees=%llu bytes=%llu\n", ok ? "ok  " : "FAIL", what,
              static_cast<unsigned long long>(c.news), static_cast<unsigned long long>(c.mallocs),
              static_cast<unsigned long long>(c.frees), static_cast<unsigned long long>(c.bytes));
  if (!ok) ++failures;
}

// Keeps the optimiser from deleting an allocation whose memory is never read.
template <typename T>
void escape(T* p) {
  asm volatile("" : : "g"(p) : "memory");
}

}  // namespace

int main() {
  using namespace lcbench::alloc;
  if (!available()) {  // an AddressSanitizer build: nothing is counted, so nothing to test
    std::printf("skipped: heap allocations are not counted under AddressSanitizer\n");
    return 77;  // Meson's exit status for a skipped test
  }

  {  // The case the benchmarks rely on: Armadillo's heap storage (posix_memalign in arma::memory::acquire).
    Scope s;
    arma::fmat a(100, 100);
    a.fill(1.0f);
    escape(a.memptr());
    const Counts c = s.counts();
    check(c.allocations() >= 1, "arma::fmat a(100,100) counts >= 1", c);
  }
  {
    Scope s;
    arma::fmat a(100, 100);
    escape(a.memptr());
    disable();
    const Counts in = counts();
    { arma::fmat b(100, 100); escape(b.memptr()); }
    const Counts after = counts();
    check(after.allocations() == in.allocations(), "nothing counted while disabled", after);
  }
  {
    Scope s;
    arma::fmat tiny(2, 2);  // fits Armadillo's in-object buffer (mat_prealloc = 16): no heap
    escape(tiny.memptr());
    const Counts c = s.counts();
    check(c.allocations() == 0, "arma::fmat(2,2) uses the in-object buffer", c);
  }
  {
    Scope s;
    std::vector<double> v(1000);
    escape(v.data());
    const Counts c = s.counts();
    check(c.news == 1 && c.mallocs == 0, "std::vector counts one operator new, not twice", c);
  }
  {
    Scope s;
    struct alignas(64) Wide { float x[16]; };
    auto* w = new Wide[3];
    escape(w);
    delete[] w;
    auto* q = new (std::nothrow) int(3);
    escape(q);
    delete q;
    auto* r = new (std::align_val_t(128), std::nothrow) char[10];
    escape(r);
    operator delete[](r, std::align_val_t(128), std::nothrow);
    const Counts c = s.counts();
    check(c.news == 3 && c.frees == 3, "aligned, nothrow and aligned-nothrow new/delete", c);
  }
  {
    Scope s;
    void* a = std::malloc(10);
    void* b = std::calloc(4, 8);
    void* p = nullptr;
    const int rc = posix_memalign(&p, 64, 100);
    void* d = std::aligned_alloc(64, 128);
    escape(a); escape(b); escape(p); escape(d);
    std::free(a); std::free(b); std::free(p); std::free(d);
    const Counts c = s.counts();
    check(rc == 0 && c.mallocs == 4 && c.frees == 4, "malloc, calloc, posix_memalign, aligned_alloc", c);
  }
  {
    Scope s;
    char* dup = strdup("allocated inside libc");  // glibc's internal malloc call is interposed too
    escape(dup);
    std::free(dup);
    const Counts c = s.counts();
    check(c.mallocs >= 1, "strdup (malloc called from inside libc)", c);
  }

  // Informational: allocations per GEMM expression into an already-sized destination, at the
  // MLP's first-layer shapes for batch 128. OpenBLAS 0.3.21's threaded sgemm mallocs a job
  // buffer on every call when it runs on more than one thread, so run this with
  // OPENBLAS_NUM_THREADS=1 and =2 to see which allocations are Armadillo's and which OpenBLAS's.
  {
    std::printf("info openblas threads = %d\n", openblas_get_num_threads());
    arma::fmat W(512, 784, arma::fill::randu), X(784, 128, arma::fill::randu);
    arma::fmat Y(512, 128), dY(512, 128, arma::fill::randu), dW(512, 784), dX(784, 128);
    Y = W * X; dW = dY * X.t(); dX = W.t() * dY;  // first use: sizes now match
    Counts c;
    { Scope s; Y = W * X; c = s.counts(); }
    std::printf("info Y = W * X           into sized Y : %llu allocations\n", static_cast<unsigned long long>(c.allocations()));
    { Scope s; dW = dY * X.t(); c = s.counts(); }
    std::printf("info dW = dY * X.t()     into sized dW: %llu allocations\n", static_cast<unsigned long long>(c.allocations()));
    { Scope s; dX = W.t() * dY; c = s.counts(); }
    std::printf("info dX = W.t() * dY     into sized dX: %llu allocations\n", static_cast<unsigned long long>(c.allocations()));
    { Scope s; Y = W * X + 1.0f; c = s.counts(); }
    std::printf("info Y = W * X + 1       into sized Y : %llu allocations\n", static_cast<unsigned long long>(c.allocations()));
    arma::fvec b(512, arma::fill::randu);
    { Scope s; Y.each_col() += b; c = s.counts(); }
    std::printf("info Y.each_col() += b  (b a fvec)  : %llu allocations\n", static_cast<unsigned long long>(c.allocations()));
    { Scope s; Y.each_col() += dY.col(0); c = s.counts(); }
    std::printf("info Y.each_col() += dY.col(0)      : %llu allocations\n", static_cast<unsigned long long>(c.allocations()));
  }

  std::printf("%s\n", failures ? "alloc_counter self-test FAILED" : "alloc_counter self-test passed");
  return failures ? 1 : 0;
}
