// Specification of the BLAS kernels layercache runs on (include/layercache/blas.hpp): the
// kernels match the CPU's features unless the environment names them.
#define BOOST_TEST_MODULE blas
#include <boost/test/unit_test.hpp>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <sstream>
#include <string>

#include "layercache/layercache.hpp"

using namespace layercache;

namespace {

CpuFeatures avx512_cpu() {
  CpuFeatures f;
  f.avx = f.avx2 = f.fma = f.avx512f = f.avx512vl = f.avx512bw = f.avx512dq = true;
  return f;
}

bool user_chose_kernels() { return std::getenv("OPENBLAS_CORETYPE") != nullptr; }

// Runs tests/blas_probe (its path in LAYERCACHE_BLAS_PROBE, set by Meson) with `env`
// prepended to its command line, and returns its "key value" lines as a map.
std::map<std::string, std::string> probe(const std::string& env) {
  const char* path = std::getenv("LAYERCACHE_BLAS_PROBE");
  BOOST_TEST_REQUIRE(path != nullptr, "LAYERCACHE_BLAS_PROBE names the probe program");
  const std::string command = "env " + env + " '" + path + "'";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  BOOST_TEST_REQUIRE(bool(pipe));
  std::string out;
  std::array<char, 512> buffer{};
  while (std::fgets(buffer.data(), int(buffer.size()), pipe.get())) out += buffer.data();
  std::map<std::string, std::string> fields;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    const auto space = line.find(' ');
    if (space != std::string::npos) fields[line.substr(0, space)] = line.substr(space + 1);
  }
  BOOST_TEST_REQUIRE(fields.count("core") == 1u, "the probe printed: " + out);
  return fields;
}

}  // namespace

BOOST_AUTO_TEST_CASE(the_kernels_for_a_cpu_are_the_newest_its_features_allow) {
  CpuFeatures cpu = avx512_cpu();
  BOOST_TEST(openblas_kernels_for(cpu) == "SkylakeX");
  cpu.avx512_bf16 = true;
  BOOST_TEST(openblas_kernels_for(cpu) == "Cooperlake");

  CpuFeatures partial = avx512_cpu();  // AVX-512 Foundation alone is not SkylakeX's set
  partial.avx512vl = false;
  BOOST_TEST(openblas_kernels_for(partial) == "Haswell");

  CpuFeatures avx2;
  avx2.avx = avx2.avx2 = avx2.fma = true;
  BOOST_TEST(openblas_kernels_for(avx2) == "Haswell");
  avx2.fma = false;  // Haswell's kernels need FMA3
  BOOST_TEST(openblas_kernels_for(avx2) == "Sandybridge");

  BOOST_TEST(openblas_kernels_for(CpuFeatures{}) == "");  // SSE only: the generic kernels
}

BOOST_AUTO_TEST_CASE(a_cpu_with_avx_never_runs_the_generic_fallback_kernels) {
  if (user_chose_kernels()) return;  // the environment's choice stands (next test)
  const BlasInfo info = blas_info();
  BOOST_TEST_MESSAGE("BLAS: " << info.config << "; kernels " << info.core << " ("
                              << info.reason << ")");
  if (!openblas_kernels_for(CpuFeatures::of_this_cpu()).empty())
    BOOST_TEST(info.core != "Prescott", info.reason);
  BOOST_TEST(info.replaced == (info.core != info.detected_core));
  BOOST_TEST(!info.reason.empty());
  BOOST_TEST(!info.config.empty());
}

BOOST_AUTO_TEST_CASE(kernels_named_by_the_environment_are_kept) {
  const CpuFeatures cpu = CpuFeatures::of_this_cpu();
  for (const std::string named : {"Prescott", "Haswell"}) {
    if (named == "Haswell" && !(cpu.avx2 && cpu.fma)) continue;  // this CPU cannot run them
    auto fields = probe("OPENBLAS_CORETYPE=" + named);
    BOOST_TEST(fields["core"] == named);
    BOOST_TEST(fields["detected"] == named);
    BOOST_TEST(fields["replaced"] == "0");
    BOOST_TEST(fields["reason"] == "OPENBLAS_CORETYPE=" + named + " chose them");
    BOOST_TEST(fields["env"] == named);
  }
}

BOOST_AUTO_TEST_CASE(choosing_the_kernels_leaves_the_environment_as_it_was) {
  auto fields = probe("-u OPENBLAS_CORETYPE");
  BOOST_TEST(fields["env"] == "(unset)");
  if (fields["replaced"] == "1")
    BOOST_TEST(fields["core"] != fields["detected"]);
  else
    BOOST_TEST(fields["core"] == fields["detected"]);
  if (!openblas_kernels_for(CpuFeatures::of_this_cpu()).empty())
    BOOST_TEST(fields["core"] != "Prescott", fields["reason"]);
}

BOOST_AUTO_TEST_CASE(products_on_the_chosen_kernels_are_right) {
  // A product larger than the kernels' blocks, against a sum in long double.
  Rng rng(3);
  const std::size_t m = 67, k = 301, n = 45;
  arma::fmat a(m, k), b(k, n);
  a.imbue([&] { return float(rng.uniform(-1, 1)); });
  b.imbue([&] { return float(rng.uniform(-1, 1)); });
  const arma::fmat c = a * b;
  double worst = 0;
  for (std::size_t j = 0; j < n; ++j)
    for (std::size_t i = 0; i < m; ++i) {
      long double sum = 0;
      for (std::size_t p = 0; p < k; ++p) sum += (long double)a(i, p) * b(p, j);
      worst = std::max(worst, double(std::abs(sum - (long double)c(i, j))));
    }
  BOOST_TEST(worst < 1e-4);
}
