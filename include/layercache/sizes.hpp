// Size arithmetic on user-given sizes, checked where the product or sum is made.
//
// One policy (docs/contract.md#sizes): every product or sum of sizes a user gives (shape
// dimensions, kernels, strides, paddings, dilations, channel and feature counts, label values,
// element and byte counts) goes through checked_mul / checked_add, and a result above
// max_size is a typed error naming the operands, never a wrapped value. max_size is the
// largest ptrdiff_t, so a checked size is also safe in signed index arithmetic and can be
// handed to an allocator (no allocation can be larger). The error type is the caller's:
// ConfigError for hyper-parameters, ShapeError for shapes, DataError for values read from
// files.
//
//   const std::size_t patch = checked_mul(checked_mul(c, kh, "in_channels × kernel height"),
//                                         kw, "in_channels × kernel height × kernel width");
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include "layercache/errors.hpp"

namespace layercache {

/// Largest size any checked product or sum may reach: the largest ptrdiff_t (2^63 − 1 on
/// 64-bit machines).
inline constexpr std::size_t max_size = static_cast<std::size_t>(PTRDIFF_MAX);

namespace detail {
// "what: a × b exceeds the largest size 9223372036854775807" (op is "×" or "+").
std::string size_overflow_message(std::string_view what, std::size_t a, std::string_view op,
                                  std::size_t b);
}  // namespace detail

/// a · b, or throws E ("what: a × b exceeds the largest size ...") when it is above max_size.
/// `what` names the quantities, e.g. "in_channels × kernel height".
template <class E = ConfigError>
std::size_t checked_mul(std::size_t a, std::size_t b, std::string_view what) {
  std::size_t r = 0;
  if (__builtin_mul_overflow(a, b, &r) || r > max_size)
    throw E(detail::size_overflow_message(what, a, "×", b));
  return r;
}

/// a + b, or throws E ("what: a + b exceeds the largest size ...") when it is above max_size.
template <class E = ConfigError>
std::size_t checked_add(std::size_t a, std::size_t b, std::string_view what) {
  std::size_t r = 0;
  if (__builtin_add_overflow(a, b, &r) || r > max_size)
    throw E(detail::size_overflow_message(what, a, "+", b));
  return r;
}

/// The product of `factors` (1 for none), each step checked as by checked_mul.
template <class E = ConfigError>
std::size_t checked_product(std::initializer_list<std::size_t> factors, std::string_view what) {
  std::size_t r = 1;
  for (std::size_t f : factors) r = checked_mul<E>(r, f, what);
  return r;
}

/// Bytes of `count` elements of `element_size` bytes each, checked as by checked_mul.
template <class E = ConfigError>
std::size_t checked_bytes(std::size_t count, std::size_t element_size, std::string_view what) {
  return checked_mul<E>(count, element_size, what);
}

/// Physical memory of this machine in bytes (0 when unknown). A single tensor larger than
/// this cannot be allocated usefully; init refuses it with a ConfigError up front instead of
/// letting the allocator fail (or the kernel kill the process once pages are touched).
std::size_t physical_memory_bytes() noexcept;

}  // namespace layercache
