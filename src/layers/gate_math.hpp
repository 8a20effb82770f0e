// The logistic sigmoid and tanh of the recurrent layers' gates (internal). In double they
// are the C library's; in float they are branch-free polynomial approximations (Cephes'
// expf and tanhf kernels, within 2e-7 of the exact value) that GCC vectorizes, so a cell's
// loop over H rows runs 4 or 8 lanes at a time instead of calling expf and tanhf per value,
// which took most of an LSTM step's element-wise time.
//
// Branch-free means no floating-point comparison either: under GCC's default
// -ftrapping-math a comparison may raise an exception, so the vectorizer may not turn a
// select on one into a blend; magnitudes are therefore compared as integers (their bit
// patterns order like the values). NaN passes through, ±∞ gives the limits.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>

namespace layercache::detail {

/// x with its magnitude limited to `limit` (positive, finite); NaN unchanged.
inline float clamp_magnitude(float x, float limit) {
  const std::uint32_t bits = std::bit_cast<std::uint32_t>(x);
  const std::uint32_t magnitude = bits & 0x7fffffffu, sign = bits & 0x80000000u;
  const std::uint32_t most = std::bit_cast<std::uint32_t>(limit);
  const bool keep = magnitude < most || magnitude > 0x7f800000u;  // within the limit, or NaN
  return std::bit_cast<float>((keep ? magnitude : most) | sign);
}

/// e^x for |x| ≤ 87 (beyond, e^±87): x = n ln 2 + r with |r| ≤ ln 2 / 2, e^r by a degree-7
/// polynomial, 2^n from the exponent bits.
inline float exp_gate(float x) {
  x = clamp_magnitude(x, 87.0f);
  // n = round(x / ln 2): 128.5 makes the truncated value positive, so truncation floors it.
  const std::int32_t n = static_cast<std::int32_t>(x * 1.44269504088896341f + 128.5f) - 128;
  const float nf = static_cast<float>(n);
  const float r = x - nf * 0.693359375f + nf * 2.12194440e-4f;  // ln 2 in two parts
  const float p = ((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r +
                    4.1665795894e-2f) * r + 1.6666665459e-1f) * r + 5.0000001201e-1f;
  return (p * r * r + r + 1.0f) * std::bit_cast<float>((n + 127) << 23);
}

/// σ(x) = 1 / (1 + e^−x).
inline float sigmoid_gate(float x) { return 1.0f / (1.0f + exp_gate(-x)); }
/// σ(x) in double, exactly as the C library computes e^−x.
inline double sigmoid_gate(double x) { return 1.0 / (1.0 + std::exp(-x)); }

/// tanh x: an odd polynomial below |x| = 0.625 (where 1 − 2 / (e^2|x| + 1) would cancel),
/// 1 − 2 / (e^2|x| + 1) with x's sign above.
inline float tanh_gate(float x) {
  const std::uint32_t bits = std::bit_cast<std::uint32_t>(x);
  const std::uint32_t magnitude = bits & 0x7fffffffu, sign = bits & 0x80000000u;
  const float z = x * x;
  const float small = ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z +
                        1.33314422036e-1f) * z - 3.33332819422e-1f) * z * x + x;
  const float large = 1.0f - 2.0f / (exp_gate(2.0f * std::bit_cast<float>(magnitude)) + 1.0f);
  const std::uint32_t small_bits = std::bit_cast<std::uint32_t>(0.625f);
  const std::uint32_t use_small = 0u - std::uint32_t(magnitude < small_bits);  // all ones or 0
  return std::bit_cast<float>((std::bit_cast<std::uint32_t>(small) & use_small) |
                              ((std::bit_cast<std::uint32_t>(large) | sign) & ~use_small));
}
/// tanh x in double, the C library's.
inline double tanh_gate(double x) { return std::tanh(x); }

}  // namespace layercache::detail
