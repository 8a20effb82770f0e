// Prints what blas_info() reports, one "key value" line each, and whether OPENBLAS_CORETYPE
// is set in this process's environment after layercache loaded (test_blas runs it under
// chosen environments).
#include <cstdio>
#include <cstdlib>

#include "layercache/blas.hpp"

int main() {
  const layercache::BlasInfo info = layercache::blas_info();
  const char* coretype = std::getenv("OPENBLAS_CORETYPE");
  std::printf("core %s\ndetected %s\nreplaced %d\nenv %s\nreason %s\n", info.core.c_str(),
              info.detected_core.c_str(), int(info.replaced), coretype ? coretype : "(unset)",
              info.reason.c_str());
}
