// Resident-set-size probes for benchmarks: peak (VmHWM) and current (VmRSS) memory of this process, in MiB.
//
// Header-only and dependency-free so any benchmark can include it. Linux's /proc/self/status is
// read first because it reports both the peak and the current value in kB; getrusage's
// ru_maxrss (also kB on Linux) is the fallback when /proc is not mounted.
#pragma once

#include <sys/resource.h>

#include <cstdio>
#include <cstring>

namespace lcbench {

namespace detail {
// Value in kB of a "Key:   1234 kB" line of /proc/self/status, or -1.
inline long proc_status_kb(const char* key) {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return -1;
  char line[256];
  long kb = -1;
  const std::size_t n = std::strlen(key);
  while (std::fgets(line, sizeof line, f)) {
    if (std::strncmp(line, key, n) == 0 && line[n] == ':') {
      std::sscanf(line + n + 1, "%ld", &kb);
      break;
    }
  }
  std::fclose(f);
  return kb;
}
}  // namespace detail

// Highest resident set size this process has reached so far, in MiB.
inline double peak_rss_mb() {
  long kb = detail::proc_status_kb("VmHWM");
  if (kb < 0) {
    struct rusage ru {};
    if (getrusage(RUSAGE_SELF, &ru) == 0) kb = ru.ru_maxrss;
  }
  return kb < 0 ? -1.0 : static_cast<double>(kb) / 1024.0;
}

// Resident set size right now, in MiB (-1 when unavailable).
inline double current_rss_mb() {
  const long kb = detail::proc_status_kb("VmRSS");
  return kb < 0 ? -1.0 : static_cast<double>(kb) / 1024.0;
}

}  // namespace lcbench
