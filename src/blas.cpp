// The BLAS's threads and kernels (include/layercache/blas.hpp).
//
// OpenBLAS built with DYNAMIC_ARCH (as Debian's is) chooses its kernel table when it loads:
// OPENBLAS_CORETYPE if set, else by the CPU's family and model, and its generic SSE3 table
// ("Prescott") for a model it does not know. gotoblas_dynamic_quit() forgets that choice and
// gotoblas_dynamic_init() makes it again, reading OPENBLAS_CORETYPE: the two together are how
// a fallback is replaced here, once, while layercache loads and before any BLAS call.
#include "layercache/blas.hpp"

#include <cstdlib>
#include <strings.h>
#include <vector>

extern "C" {
void openblas_set_num_threads(int);
int openblas_get_num_threads(void);
char* openblas_get_corename(void);
char* openblas_get_config(void);
// Only in DYNAMIC_ARCH builds: weak, so a build for one CPU links too (they are then null).
void gotoblas_dynamic_init(void) __attribute__((weak));
void gotoblas_dynamic_quit(void) __attribute__((weak));
}

namespace layercache {
namespace {

// OpenBLAS's name for its generic x86-64 kernels, its choice for a CPU model it does not know.
constexpr const char* generic_core = "Prescott";

// The kernels a CPU with these features can run, newest first; none without AVX.
std::vector<std::string> kernels_newest_first(const CpuFeatures& cpu) {
  const bool avx512 = cpu.avx512f && cpu.avx512vl && cpu.avx512bw && cpu.avx512dq && cpu.avx2 &&
                      cpu.fma;
  std::vector<std::string> out;
  if (avx512 && cpu.avx512_bf16) out.push_back("Cooperlake");
  if (avx512) out.push_back("SkylakeX");
  if (cpu.avx2 && cpu.fma) out.push_back("Haswell");
  if (cpu.avx) out.push_back("Sandybridge");
  return out;
}

std::string text(const char* s) { return s ? std::string(s) : std::string(); }

bool same_name(const std::string& a, const std::string& b) {
  return strcasecmp(a.c_str(), b.c_str()) == 0;
}

// The kernels' choice at load (blas_info() fills in config and replaced as they are now).
BlasInfo choose_kernels() {
  BlasInfo info;
  info.detected_core = info.core = text(openblas_get_corename());
  if (const char* forced = std::getenv("OPENBLAS_CORETYPE")) {
    info.reason = "OPENBLAS_CORETYPE=" + std::string(forced) + " chose them";
    return info;
  }
  if (!same_name(info.detected_core, generic_core)) {
    info.reason = "OpenBLAS chose them by the CPU's model";
    return info;
  }
  const std::vector<std::string> candidates = kernels_newest_first(CpuFeatures::of_this_cpu());
  if (candidates.empty()) {
    info.reason = "the CPU has no AVX: OpenBLAS's generic kernels are its best";
    return info;
  }
  if (!gotoblas_dynamic_init || !gotoblas_dynamic_quit) {
    info.reason = "this OpenBLAS is built for one CPU; its kernels cannot be changed";
    return info;
  }
  // Nothing else runs yet: this is layercache's load, before main (or within dlopen). An
  // older OpenBLAS may lack the newest kernels (it then falls back to its generic ones
  // again): the next older kernels are tried.
  for (const std::string& wanted : candidates) {
    ::setenv("OPENBLAS_CORETYPE", wanted.c_str(), 1);
    gotoblas_dynamic_quit();
    gotoblas_dynamic_init();
    ::unsetenv("OPENBLAS_CORETYPE");
    info.core = text(openblas_get_corename());
    if (same_name(info.core, wanted)) {
      info.reason = "OpenBLAS does not know this CPU's model and fell back to its generic "
                    "kernels; the CPU's features allow " + wanted;
      return info;
    }
  }
  info.reason = "OpenBLAS does not know this CPU's model, and has none of the kernels its "
                "features allow (" + candidates.front() + " and older)";
  return info;
}

// Made once, on first use; the definition below makes that first use layercache's load.
const BlasInfo& startup_choice() {
  static const BlasInfo info = choose_kernels();
  return info;
}

[[maybe_unused]] const bool chosen_at_load = (startup_choice(), true);

}  // namespace

void set_blas_threads(int threads) { openblas_set_num_threads(threads > 0 ? threads : 0); }

int blas_threads() { return openblas_get_num_threads(); }

CpuFeatures CpuFeatures::of_this_cpu() noexcept {
  CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();  // libgcc counts a feature only when the OS saves its registers
  f.avx = __builtin_cpu_supports("avx");
  f.avx2 = __builtin_cpu_supports("avx2");
  f.fma = __builtin_cpu_supports("fma");
  f.avx512f = __builtin_cpu_supports("avx512f");
  f.avx512vl = __builtin_cpu_supports("avx512vl");
  f.avx512bw = __builtin_cpu_supports("avx512bw");
  f.avx512dq = __builtin_cpu_supports("avx512dq");
  f.avx512_bf16 = __builtin_cpu_supports("avx512bf16");
#endif
  return f;
}

std::string openblas_kernels_for(const CpuFeatures& cpu) {
  const std::vector<std::string> kernels = kernels_newest_first(cpu);
  return kernels.empty() ? std::string() : kernels.front();
}

BlasInfo blas_info() {
  BlasInfo info = startup_choice();
  info.config = text(openblas_get_config());  // as they are now
  info.core = text(openblas_get_corename());
  info.replaced = !same_name(info.core, info.detected_core);
  return info;
}

}  // namespace layercache
