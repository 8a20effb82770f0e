// TimeDistributed: one layer applied to every step of a sequence, all steps in one call.
#pragma once

#include <vector>

#include "layercache/combinator.hpp"

namespace layercache {

/// What TimeDistributed keeps for backward: the inner layer's forward result, and the views
/// that read the sequence as steps (F × T·batch) and the inner output as a sequence.
template <class T>
struct TimeDistributedCache : ChildrenCache<T> {
  ConstBuffer<T> step_view;    ///< the input viewed as (F × T·batch), sharing its memory
  ConstBuffer<T> output_view;  ///< the inner output viewed as (T·F' × batch), sharing its memory
};

/// Applies `inner` to every step of a sequence input Shape{T, F}: the sequence is viewed in
/// place as (F × T·batch), so the inner layer sees T·batch samples of Shape{F} in one call
/// (one GEMM for a Dense), and its output (F' × T·batch) is read back in place as the
/// sequence Shape{T, F'}. No copy either way.
///   forward:  y_t = inner(x_t) for every step t
///   backward: dx_t = inner's dx for dy_t; the parameter gradients sum over the steps
/// The child is named like a network's (dense1, or named(...)). Padding steps are computed
/// like real ones; a masked loss (SequenceSoftmaxCrossEntropy) gives them no gradient.
class TimeDistributed : public CombinatorImpl<TimeDistributed, TimeDistributedCache> {
 public:
  /// The layer's kind.
  static constexpr const char* kind_name = "time_distributed";
  /// `inner` applied to every step.
  explicit TimeDistributed(AnyLayer inner);

  /// Shape{T, F'} for an input Shape{T, F} whose steps inner maps to F' values.
  Shape output_shape(const Shape& input) const override;
  /// The inner layer, receiving Shape{F}.
  std::vector<Part> parts(const Shape& input) const override;

  /// y = inner on the (F × T·batch) view (see CombinatorImpl).
  template <class T>
  void forward_t(const Tree<T>& params, const Tree<T>& state, const ConstBuffer<T>& x,
                 const LayerCall<T>& call, TimeDistributedCache<T>& cache,
                 ForwardResult<T>& out) const;
  /// inner's backward on dy viewed as steps (see CombinatorImpl).
  template <class T>
  void backward_t(const Tree<T>& params, const TimeDistributedCache<T>& cache,
                  const arma::Mat<T>& dy, const Needs& needs, BackwardResult<T>& out) const;
  /// y = inner on the (F × T·batch) view (see CombinatorImpl).
  template <class T>
  void infer_t(const Tree<T>& params, const Tree<T>& state, const arma::Mat<T>& x,
               const LayerCall<T>& call, arma::Mat<T>& y) const;

 private:
  std::vector<Child> children_;
};

extern template class LayerImpl<TimeDistributed, TimeDistributedCache>;

}  // namespace layercache
