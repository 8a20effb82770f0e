// Library-internal (not installed): the sum of a step's gradients across processes. The
// gradients are copied, as backward finishes them, into one flat buffer cut into buckets of a
// fixed size; each bucket's sum is started as soon as it is full, while backward still runs
// the layers before. Every rank starts the same buckets in the same order, also a rank that
// failed (it fills the rest with zeros), so no rank waits for a sum another never starts.
#pragma once

#include <cstddef>
#include <exception>
#include <utility>
#include <vector>

#include "layercache/distributed.hpp"
#include "layercache/training.hpp"

namespace layercache::detail {

// check_all with a caller-kept scratch buffer (no allocation once it is large enough).
void check_all(Collective& group, std::exception_ptr outcome, double* sums, std::size_t n,
               std::vector<double>& scratch);

template <class T>
class GradientExchange final : public GradsListener {
 public:
  // Starts a step's stream of `total` values (the gradients, then the state), summed in
  // buckets of `bucket` values; each value is multiplied by `scale` as it is copied in.
  void begin(Collective& group, std::size_t total, std::size_t bucket, T scale);
  // Backward's announcement: the leaves of `grads` go into the stream.
  void grads_final(Tree<float>& grads) override;
  void grads_final(Tree<double>& grads) override;
  // Adds every non-empty leaf of `tree` that is not in the stream yet, depth first.
  void add(Tree<T>& tree);
  // Completes the stream with zeros: what a rank that failed sends, so that it starts every
  // bucket the others start.
  void fill();
  // Completes the stream, waits for the sums and runs check_all with `outcome` and the `n`
  // numbers of `sums`: throws on every rank when one failed (or its stream was not `total`
  // values long).
  void finish(std::exception_ptr outcome, double* sums, std::size_t n);
  // Writes the sums back into the leaves they came from, times `scale`.
  void unpack(T scale) noexcept;
  // The first leaf found holding NaN or Inf (after scaling), or null.
  const T* non_finite() const noexcept { return non_finite_; }

 private:
  void add_leaf(arma::Mat<T>& leaf);
  void start_full_buckets();

  Collective* group_ = nullptr;
  std::vector<T> flat_;                        // (total): the stream
  std::vector<std::pair<T*, std::size_t>> leaves_;  // where each run of the stream came from
  std::vector<double> scratch_;                // check_all's
  std::size_t total_ = 0, bucket_ = 1, filled_ = 0, started_ = 0;
  T scale_ = 1;
  bool overflow_ = false;
  const T* non_finite_ = nullptr;
};

}  // namespace layercache::detail
