// LAYERCACHE_VECTOR_KERNEL marks a library function whose work is one element-wise loop
// (an optimizer's slice update, a gradient sum, a finiteness scan). The library is built
// for the baseline x86-64 instruction set, whose vectors hold 4 floats; on GCC for x86-64
// with glibc the marked function is also compiled for x86-64-v3 (AVX2 and FMA, 8 floats), and
// the dynamic loader picks the variant the CPU supports once, at load time (an ifunc).
// Elsewhere the macro is empty and the function is compiled once; so it is under
// ThreadSanitizer, whose instrumented ifunc resolver would run while the loader relocates
// the library, before the sanitizer's runtime is set up, and crash the program.
//
// The variants may round differently (FMA contracts a·b + c), so a result can differ in
// its last bits between two CPUs; on one machine every call takes the same variant, and
// results are reproducible there.
#pragma once

#include <cstddef>  // defines __GLIBC__ where the C library is glibc (ifuncs need it)

//
// LAYERCACHE_WIDE_VECTOR_KERNEL adds an x86-64-v4 variant (AVX-512, 16 floats) for loops
// whose element-wise math is long enough to be bound by the instruction count rather than
// by memory: the recurrent layers' gates (a polynomial e^x per gate, src/layers/gate_math.hpp)
// run in half the time there (measured on an AMD EPYC of the Zen 5 family).
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__GLIBC__) && \
    !defined(__AVX2__) && !defined(__SANITIZE_THREAD__)
#define LAYERCACHE_VECTOR_KERNEL __attribute__((target_clones("arch=x86-64-v3", "default")))
#define LAYERCACHE_WIDE_VECTOR_KERNEL \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define LAYERCACHE_VECTOR_KERNEL
#define LAYERCACHE_WIDE_VECTOR_KERNEL
#endif
