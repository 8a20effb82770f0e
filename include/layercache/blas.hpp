// The BLAS under layercache (docs/performance.md#blas-kernels): how many threads it uses, and
// which of its kernels run. OpenBLAS picks its kernels when it loads, by the CPU's model; a
// CPU newer than the OpenBLAS release (Debian 12 ships 0.3.21) gets its generic SSE3 kernels
// ("Prescott"), several times slower than the AVX2 or AVX-512 ones the CPU can run. When
// layercache loads, it replaces that fallback by the kernels the CPU's features allow, unless
// the environment names the kernels (OPENBLAS_CORETYPE), which then stand.
#pragma once

#include <string>

namespace layercache {

/// Sets the number of threads the BLAS uses (OpenBLAS); 0 restores its default.
void set_blas_threads(int threads);
/// The number of threads the BLAS uses.
int blas_threads();

/// The vector instruction sets of a CPU that choose among OpenBLAS's x86-64 kernels (each
/// counted only when the operating system saves its registers).
struct CpuFeatures {
  bool avx = false;          ///< AVX
  bool avx2 = false;         ///< AVX2
  bool fma = false;          ///< FMA3
  bool avx512f = false;      ///< AVX-512 Foundation
  bool avx512vl = false;     ///< AVX-512 Vector Length extensions
  bool avx512bw = false;     ///< AVX-512 Byte and Word
  bool avx512dq = false;     ///< AVX-512 Doubleword and Quadword
  bool avx512_bf16 = false;  ///< AVX-512 BFloat16

  /// The features of the CPU this program runs on (all false off x86-64).
  static CpuFeatures of_this_cpu() noexcept;
};

/// The OpenBLAS kernels for a CPU with these features: "Cooperlake" (AVX-512 with BFloat16),
/// "SkylakeX" (AVX-512), "Haswell" (AVX2 and FMA), "Sandybridge" (AVX), or "" for a CPU
/// without AVX, where nothing beats OpenBLAS's generic kernels.
std::string openblas_kernels_for(const CpuFeatures& cpu);

/// What the BLAS runs, and how that was decided.
struct BlasInfo {
  std::string config;         ///< OpenBLAS's description of its build (openblas_get_config)
  std::string core;           ///< the kernels in use, by OpenBLAS's name ("Haswell", ...)
  std::string detected_core;  ///< the kernels OpenBLAS chose itself when it loaded
  bool replaced = false;      ///< whether layercache replaced detected_core by core
  std::string reason;         ///< why core is what it is, one sentence
};

/// The BLAS's kernels and how they were chosen. The choice is made once, when layercache
/// loads: OpenBLAS's generic fallback ("Prescott") on a CPU with AVX or better is replaced by
/// openblas_kernels_for(CpuFeatures::of_this_cpu()), or by the next older kernels the CPU can
/// run where this OpenBLAS lacks those. A set OPENBLAS_CORETYPE (any value) is
/// the user's choice and is kept, as is any kernel OpenBLAS picked by the CPU's model.
BlasInfo blas_info();

}  // namespace layercache
