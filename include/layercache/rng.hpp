// The explicit random stream: every draw in layercache (initialization, dropout
// masks, shuffling) comes from an Rng the caller owns and seeds. Armadillo's global generator
// is never used. The generator is xoshiro256** seeded through splitmix64, and the
// distributions are written here, so one seed gives the same numbers on every platform.
// The state is four 64-bit words; it goes into a checkpoint as a tree leaf (rng_to_tree), so
// a run that shuffles or draws resumes on exactly the stream it left.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace layercache {

template <class T>
class Tree;  // layercache/tree.hpp

/// A seeded, reproducible random stream. Cheap to copy; a copy continues the same sequence.
class Rng {
 public:
  /// The generator's whole state: the four 64-bit words of xoshiro256**.
  using State = std::array<std::uint64_t, 4>;

  /// A stream determined entirely by `seed`.
  explicit Rng(std::uint64_t seed = 0) noexcept;
  /// The stream whose state is `state` (as state() returned it): it continues exactly where
  /// that stream was. Throws ConfigError for the all-zero state, which no stream ever has
  /// (xoshiro would draw zeros forever).
  static Rng from_state(const State& state);

  /// The current state; from_state(state()) continues this stream draw for draw.
  State state() const noexcept { return s_; }

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
  State s_{};
};

/// The stream's state as a tree leaf, so it is saved in a checkpoint by path like any tensor
/// ("rng"). The leaf is a (16 × 1) column of whole numbers in [0, 65535]: row 4·i + j holds
/// bits 16·j .. 16·j + 15 of state word i. Every such number is exact in float as in
/// double, so the leaf survives either element type and convert<>() bit for bit.
template <class T>
Tree<T> rng_to_tree(const Rng& rng);

/// The stream saved by rng_to_tree: it continues exactly where the saved one was. Throws
/// DataError when `tree` is not a (16 × 1) leaf of whole numbers in [0, 65535] (naming the
/// first bad row and its value), or holds the all-zero state.
template <class T>
Rng rng_from_tree(const Tree<T>& tree);

}  // namespace layercache
