// xoshiro256** with splitmix64 seeding, platform-independent distributions, and the state
// as a tree leaf for checkpoints.
#include "layercache/rng.hpp"

#include <cmath>
#include <numbers>

#include "layercache/tree.hpp"
#include "word_pieces.hpp"

namespace layercache {
namespace {

std::uint64_t splitmix64(std::uint64_t& x) noexcept {
  std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }

}  // namespace

Rng::Rng(std::uint64_t seed) noexcept {
  for (auto& word : s_) word = splitmix64(seed);
}

Rng Rng::from_state(const State& state) {
  if (state == State{})
    throw ConfigError("the all-zero rng state is not a state of any stream");
  Rng rng;
  rng.s_ = state;
  return rng;
}

std::uint64_t Rng::next() noexcept {
  const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const std::uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

// The top 53 bits give every double in [0, 1) on a uniform grid of spacing 2^-53.
double Rng::uniform() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

double Rng::uniform(double low, double high) noexcept { return low + (high - low) * uniform(); }

double Rng::normal() noexcept {
  // Box–Muller; 1 - u keeps the logarithm's argument in (0, 1].
  const double u1 = 1.0 - uniform();
  const double u2 = uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

double Rng::normal(double mean, double stddev) noexcept { return mean + stddev * normal(); }

std::uint64_t Rng::below(std::uint64_t n) noexcept {
  // Rejection sampling removes the modulo bias.
  const std::uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  std::uint64_t r;
  do {
    r = next();
  } while (r >= limit);
  return r % n;
}

Rng Rng::split() noexcept { return Rng(next()); }

template <class T>
Tree<T> rng_to_tree(const Rng& rng) {
  const Rng::State state = rng.state();
  return Tree<T>(detail::words_to_pieces<T>(state.data(), state.size()));
}

template <class T>
Rng rng_from_tree(const Tree<T>& tree) {
  const std::string what = "an rng state";
  if (!tree.is_leaf())
    throw DataError("expected " + what + ": a (16 × 1) leaf, found a branch");
  Rng::State state;
  detail::pieces_to_words(tree.value(), state.data(), state.size(), what);
  if (state == Rng::State{}) throw DataError("the all-zero rng state is not a state of any stream");
  return Rng::from_state(state);
}

template Tree<float> rng_to_tree<float>(const Rng&);
template Tree<double> rng_to_tree<double>(const Rng&);
template Rng rng_from_tree<float>(const Tree<float>&);
template Rng rng_from_tree<double>(const Tree<double>&);

}  // namespace layercache
