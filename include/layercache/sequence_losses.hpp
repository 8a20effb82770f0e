// Per-step losses over sequences (docs/sequences.md): a sequence of T steps of n_classes
// logits is one column (Shape{T, n_classes}), and the label of every step is given, with
// padding steps marked by a label that is skipped.
#pragma once

#include <cstddef>
#include <limits>

#include "layercache/losses.hpp"

namespace layercache {

/// Options of SequenceSoftmaxCrossEntropy.
struct SequenceSoftmaxCrossEntropyOptions {
  /// Classes per step (the rows of one step's logits); must be positive.
  std::size_t n_classes = 0;
  /// The label of a padding step: it adds nothing to the value and gets a zero gradient.
  arma::uword padding = std::numeric_limits<arma::uword>::max();
  /// Throw NumericError when y holds a NaN or Inf.
  bool check_finite = false;
};

/// Softmax cross-entropy at every step of a sequence, ignoring padding steps. y holds logits
/// (T·n_classes × batch), step t of sample b at rows [t·n_classes, (t+1)·n_classes) of
/// column b; labels hold T·batch entries, the label of step t of sample b at b·T + t (a
/// (T × batch) label matrix in column-major order), `padding` for a padding step. With N the
/// number of real steps in the batch,
///   value = (1/N) Σ_{real steps} (log Σ_k exp(y_k) − y_label),
///   grad  = (softmax(y) − onehot(label)) / N at real steps, 0 at padding steps
/// (PyTorch's cross_entropy with ignore_index and mean reduction). A batch without a real
/// step has value 0 and gradient 0. Takes labels only. Name "sequence_softmax_cross_entropy".
class SequenceSoftmaxCrossEntropy : public LossImpl<SequenceSoftmaxCrossEntropy> {
 public:
  /// A sequence cross-entropy; throws ConfigError unless n_classes is positive.
  explicit SequenceSoftmaxCrossEntropy(SequenceSoftmaxCrossEntropyOptions options);

  std::string name() const override { return "sequence_softmax_cross_entropy"; }
  bool accepts_labels() const noexcept override { return true; }
  bool accepts_targets() const noexcept override { return false; }
  /// The options given at construction.
  const SequenceSoftmaxCrossEntropyOptions& options() const noexcept { return options_; }

  /// The value, and the gradient when grad is not null (see the class comment).
  template <class T>
  double compute_t(const arma::Mat<T>& y, const Targets<T>& targets, arma::Mat<T>* grad) const;

 private:
  SequenceSoftmaxCrossEntropyOptions options_;
};

}  // namespace layercache
