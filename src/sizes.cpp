// Messages of the checked size arithmetic, and the machine's memory for allocation checks.
#include "layercache/sizes.hpp"

#include <unistd.h>

namespace layercache {

std::string detail::size_overflow_message(std::string_view what, std::size_t a,
                                          std::string_view op, std::size_t b) {
  return std::string(what) + " = " + std::to_string(a) + " " + std::string(op) + " " +
         std::to_string(b) + " exceeds the largest size " + std::to_string(max_size);
}

std::size_t physical_memory_bytes() noexcept {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page <= 0) return 0;
  std::size_t bytes = 0;
  if (__builtin_mul_overflow(std::size_t(pages), std::size_t(page), &bytes)) return max_size;
  return bytes;
}

}  // namespace layercache
