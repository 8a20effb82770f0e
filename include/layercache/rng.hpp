// The explicit random stream: every draw in layercache (initialization, dropout
// masks, shuffling) comes from an Rng the caller owns and seeds. Armadillo's global generator
// is never used. The generator is xoshiro256** seeded through splitmix64, and the
// distributions are written here, so one seed gives the same numbers on every platform.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace layercache {

/// A seeded, reproducible random stream. Cheap to copy; a copy continues the same sequence.
class Rng {
 public:
  /// A stream determined entirely by `seed`.
  explicit Rng(std::uint64_t seed = 0) noexcept;

  /// Next 64 random bits.
  std::uint64_t next() noexcept;
  /// Uniform double in [0, 1).
  double uniform() noexcept;
  /// Uniform double in [low, high).
  double uniform(double low, double high) noexcept;
  /// Standard normal double (Box–Muller; one draw consumes two uniforms).
  double normal() noexcept;
  /// Normal with the given mean and standard deviation.
  double normal(double mean, double stddev) noexcept;
  /// Uniform integer in [0, n) without modulo bias; n must be positive.
  std::uint64_t below(std::uint64_t n) noexcept;
  /// An independent stream derived from this one (advances this stream by one draw).
  Rng split() noexcept;

 private:
  std::array<std::uint64_t, 4> s_{};
};

}  // namespace layercache
