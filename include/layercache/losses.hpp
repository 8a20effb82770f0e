// Losses (docs/losses.md) and classification metrics: each loss returns its value and the
// gradient with respect to its input, written into a buffer the caller may reuse.
//
// Columns are samples: the prediction y is (n_outputs × batch). A loss compares y with
// either class labels (an arma::uvec, one class index per column) or a dense target matrix
// of y's shape. Every loss is the mean over the batch of a per-sample loss; the element-wise
// losses (MSE, MAE, Huber, binary cross-entropy) average over the features of a sample by
// default, like PyTorch and Keras (FeatureReduction::sum adds them instead). The formulas,
// their gradients and the reduction convention are in docs/losses.md.
//
//   SoftmaxCrossEntropy loss;                            // hyper-parameters only, immutable
//   LossResult<float> r = loss(y, labels);               // r.value, r.grad (y's shape)
//   double v = loss.value_and_grad(y, labels, grad);     // reuses grad: no allocation
//
// A loss object holds hyper-parameters only; all methods are const and thread-safe. Any
// loss is a `Loss`, so a training loop takes `const Loss&`.
//
// This header is C++17-compatible; the templates are compiled once in src/losses.cpp for
// float and double.
#pragma once

#include <armadillo>
#include <string>

namespace layercache {

/// A loss value and its gradient with respect to the loss's input y.
template <class T>
struct LossResult {
  /// The loss: mean over the batch of the per-sample loss (computed in double).
  double value = 0.0;
  /// d value / d y, same shape as y.
  arma::Mat<T> grad;
};

/// What a loss compares y with: class labels or a dense target matrix. A non-owning view
/// (like std::string_view): the labels or matrix must outlive it. Converts implicitly from
/// either, so `loss.value_and_grad(y, labels, &grad)` and `(y, targets, &grad)` both read
/// naturally.
template <class T>
class Targets {
 public:
  /// Class labels: one class index per column of y.
  Targets(const arma::uvec& labels) noexcept : labels_(&labels) {}  // NOLINT: implicit view
  /// A dense target matrix of y's shape.
  Targets(const arma::Mat<T>& matrix) noexcept : matrix_(&matrix) {}  // NOLINT: implicit view

  /// True when the targets are class labels.
  bool has_labels() const noexcept { return labels_ != nullptr; }
  /// The class labels; only valid when has_labels().
  const arma::uvec& labels() const noexcept { return *labels_; }
  /// The target matrix; only valid when !has_labels().
  const arma::Mat<T>& matrix() const noexcept { return *matrix_; }

 private:
  const arma::uvec* labels_ = nullptr;
  const arma::Mat<T>* matrix_ = nullptr;
};

namespace detail {
/// T itself; Identity<T>::type in a parameter's type keeps T from being deduced there.
template <class T>
struct Identity {
  /// T.
  using type = T;
};
}  // namespace detail

/// Targets<T> as the parameter of a function template that deduces T from its other
/// arguments (the batch, the params), so labels or a target matrix convert to it as they do
/// for a plain function: `train_step(..., x, shape, labels, ...)`.
template <class T>
using TargetsArg = typename detail::Identity<Targets<T>>::type;

/// How element-wise losses combine the features of one sample.
enum class FeatureReduction {
  /// Average over the features (PyTorch's and Keras's convention; the default).
  mean,
  /// Sum over the features (the squared Euclidean distance for MSE).
  sum,
};

/// The interface every loss implements. Hyper-parameters only: all methods are const.
///
/// Errors (the error's path is the loss's name()): ShapeError when y is empty, when the
/// number of labels differs from the batch, or when a target matrix is not of y's shape;
/// DataError naming the sample (column), the label and the number of classes when a label
/// is out of range, or the sample and row of a cross-entropy's target outside [0, 1];
/// ConfigError when the loss does not accept the kind of targets given or when grad shares
/// memory with y or the targets; NumericError naming the first non-finite
/// entry of y or the targets when the loss's check_finite option is on.
class Loss {
 public:
  virtual ~Loss() = default;

  /// Snake-case name used in messages and as the path of errors ("softmax_cross_entropy").
  virtual std::string name() const = 0;
  /// True when the loss takes class labels.
  virtual bool accepts_labels() const noexcept = 0;
  /// True when the loss takes a dense target matrix.
  virtual bool accepts_targets() const noexcept = 0;

  /// The loss value; when grad is not null, also writes d value / d y into *grad, resized
  /// to y's shape (no allocation when it already has y's shape or size). grad must not
  /// share memory with y or the targets.
  virtual double value_and_grad(const arma::Mat<float>& y, const Targets<float>& targets,
                                arma::Mat<float>* grad) const = 0;
  /// The loss value and, when grad is not null, the gradient (double precision).
  virtual double value_and_grad(const arma::Mat<double>& y, const Targets<double>& targets,
                                arma::Mat<double>* grad) const = 0;

  /// Value and gradient against class labels, writing the gradient into `grad` (reused:
  /// no allocation when grad already has y's shape).
  template <class T>
  double value_and_grad(const arma::Mat<T>& y, const arma::uvec& labels,
                        arma::Mat<T>& grad) const;
  /// Value and gradient against a target matrix, writing the gradient into `grad`.
  template <class T>
  double value_and_grad(const arma::Mat<T>& y, const arma::Mat<T>& targets,
                        arma::Mat<T>& grad) const;

  /// Value and a fresh gradient against class labels.
  template <class T>
  LossResult<T> operator()(const arma::Mat<T>& y, const arma::uvec& labels) const;
  /// Value and a fresh gradient against a target matrix.
  template <class T>
  LossResult<T> operator()(const arma::Mat<T>& y, const arma::Mat<T>& targets) const;
  /// Value and a fresh gradient against labels or targets.
  template <class T>
  LossResult<T> operator()(const arma::Mat<T>& y, const Targets<T>& targets) const;

  /// The value alone against class labels (no gradient is computed).
  template <class T>
  double value(const arma::Mat<T>& y, const arma::uvec& labels) const;
  /// The value alone against a target matrix (no gradient is computed).
  template <class T>
  double value(const arma::Mat<T>& y, const arma::Mat<T>& targets) const;
};

/// Base for concrete losses: implements both virtual value_and_grad overloads by calling the
/// derived class's member template `compute_t(y, targets, grad)` (one template over the
/// element type T, returning the value and writing the gradient when grad is not null), so
/// a loss is written once for any element type.
template <class Derived>
class LossImpl : public Loss {
 public:
  using Loss::value_and_grad;

  /// Calls Derived::compute_t<float> (see Loss::value_and_grad).
  double value_and_grad(const arma::Mat<float>& y, const Targets<float>& targets,
                        arma::Mat<float>* grad) const override {
    return static_cast<const Derived&>(*this).compute_t(y, targets, grad);
  }
  /// Calls Derived::compute_t<double> (see Loss::value_and_grad).
  double value_and_grad(const arma::Mat<double>& y, const Targets<double>& targets,
                        arma::Mat<double>* grad) const override {
    return static_cast<const Derived&>(*this).compute_t(y, targets, grad);
  }
};

/// Base of the library's losses: a LossImpl that also holds the loss's name, whether it takes
/// class labels (every one takes a target matrix) and its options, so that each loss
/// declares only its constructor and its compute_t.
template <class Derived, class Options>
class BasicLoss : public LossImpl<Derived> {
 public:
  std::string name() const override { return name_; }
  bool accepts_labels() const noexcept override { return labels_; }
  bool accepts_targets() const noexcept override { return true; }
  /// The options given at construction.
  const Options& options() const noexcept { return options_; }

 protected:
  /// A loss called `name` (a string literal) with the given options; it takes class labels
  /// when `labels` is true.
  BasicLoss(const char* name, bool labels, const Options& options) noexcept
      : options_(options), name_(name), labels_(labels) {}

  /// The options given at construction.
  Options options_;

 private:
  const char* name_;
  bool labels_;
};

// ----- regression and element-wise losses -------------------------------------------------

/// Options of MeanSquaredError, MeanAbsoluteError and BinaryCrossEntropyWithLogits.
struct ElementwiseLossOptions {
  /// Average (default) or sum the per-element losses of one sample.
  FeatureReduction features = FeatureReduction::mean;
  /// Throw NumericError when y or the targets hold a NaN or Inf.
  bool check_finite = false;
};

/// Mean squared error against a target matrix: per element (y − t)²; gradient 2 (y − t)
/// scaled by the reduction. Name "mean_squared_error".
class MeanSquaredError : public BasicLoss<MeanSquaredError, ElementwiseLossOptions> {
 public:
  /// A mean squared error with the given reduction.
  explicit MeanSquaredError(ElementwiseLossOptions options = {}) noexcept
      : BasicLoss("mean_squared_error", false, options) {}

  template <class T>
  double compute_t(const arma::Mat<T>& y, const Targets<T>& targets, arma::Mat<T>* grad) const;
};

/// Mean absolute error against a target matrix: per element |y − t|; gradient sign(y − t)
/// (0 where y = t) scaled by the reduction. Name "mean_absolute_error".
class MeanAbsoluteError : public BasicLoss<MeanAbsoluteError, ElementwiseLossOptions> {
 public:
  /// A mean absolute error with the given reduction.
  explicit MeanAbsoluteError(ElementwiseLossOptions options = {}) noexcept
      : BasicLoss("mean_absolute_error", false, options) {}

  template <class T>
  double compute_t(const arma::Mat<T>& y, const Targets<T>& targets, arma::Mat<T>* grad) const;
};

/// Options of Huber.
struct HuberOptions {
  /// Where the loss turns from quadratic to linear; must be positive.
  double delta = 1.0;
  /// Average (default) or sum the per-element losses of one sample.
  FeatureReduction features = FeatureReduction::mean;
  /// Throw NumericError when y or the targets hold a NaN or Inf.
  bool check_finite = false;
};

/// Huber loss against a target matrix: per element, with d = y − t,
///   ½ d²              when |d| ≤ δ
///   δ (|d| − ½ δ)     otherwise;
/// gradient d clipped to [−δ, δ], scaled by the reduction. Name "huber".
class Huber : public BasicLoss<Huber, HuberOptions> {
 public:
  /// A Huber loss; throws ConfigError unless options.delta is positive and finite.
  explicit Huber(HuberOptions options = {});
  /// A Huber loss with threshold `delta` and the default reduction.
  explicit Huber(double delta);

  template <class T>
  double compute_t(const arma::Mat<T>& y, const Targets<T>& targets, arma::Mat<T>* grad) const;
};

/// Binary cross-entropy on logits z, fused with the sigmoid for stability: per element
///   max(z, 0) − z t + log(1 + exp(−|z|));
/// gradient sigmoid(z) − t, scaled by the reduction. Targets are probabilities in [0, 1] of
/// y's shape (several independent outputs per sample are allowed), or labels 0/1 when y has
/// one row. Name "binary_cross_entropy_with_logits".
class BinaryCrossEntropyWithLogits
    : public BasicLoss<BinaryCrossEntropyWithLogits, ElementwiseLossOptions> {
 public:
  /// A binary cross-entropy with the given reduction.
  explicit BinaryCrossEntropyWithLogits(ElementwiseLossOptions options = {}) noexcept
      : BasicLoss("binary_cross_entropy_with_logits", true, options) {}

  template <class T>
  double compute_t(const arma::Mat<T>& y, const Targets<T>& targets, arma::Mat<T>* grad) const;
};

// ----- classification losses --------------------------------------------------------------

/// Options of SoftmaxCrossEntropy.
struct SoftmaxCrossEntropyOptions {
  /// ε in [0, 1]: the target becomes (1 − ε) target + ε / n_classes.
  double label_smoothing = 0.0;
  /// Throw NumericError when y or the targets hold a NaN or Inf.
  bool check_finite = false;
};

/// Softmax followed by cross-entropy, fused for numerical stability. y holds logits
/// (n_classes × batch). Per sample, with q the (smoothed) target distribution,
///   log Σ_k exp(y_k) − Σ_k q_k y_k     (Σ_k q_k = 1 for labels and proper targets);
/// gradient (softmax(y) Σ_k q_k − q) / batch. Finite for logits of any finite size.
/// Name "softmax_cross_entropy".
class SoftmaxCrossEntropy : public BasicLoss<SoftmaxCrossEntropy, SoftmaxCrossEntropyOptions> {
 public:
  /// A softmax cross-entropy; throws ConfigError unless label_smoothing is in [0, 1].
  explicit SoftmaxCrossEntropy(SoftmaxCrossEntropyOptions options = {});

  template <class T>
  double compute_t(const arma::Mat<T>& y, const Targets<T>& targets, arma::Mat<T>* grad) const;
};

/// Options of NegativeLogLikelihood.
struct NegativeLogLikelihoodOptions {
  /// Throw NumericError when y or the targets hold a NaN or Inf.
  bool check_finite = false;
};

/// Negative log-likelihood of log-probabilities y (n_classes × batch), e.g. the output of a
/// log-softmax: per sample −y_label (or −Σ_k t_k y_k for a target matrix); gradient
/// −onehot / batch (or −t / batch). Name "negative_log_likelihood".
class NegativeLogLikelihood
    : public BasicLoss<NegativeLogLikelihood, NegativeLogLikelihoodOptions> {
 public:
  /// A negative log-likelihood.
  explicit NegativeLogLikelihood(NegativeLogLikelihoodOptions options = {}) noexcept
      : BasicLoss("negative_log_likelihood", true, options) {}

  template <class T>
  double compute_t(const arma::Mat<T>& y, const Targets<T>& targets, arma::Mat<T>* grad) const;
};

// ----- column-wise softmax ----------------------------------------------------------------

/// softmax of each column of the logits y, computed stably (max subtracted), into `out`
/// (resized to y's shape; no allocation when it already has it). `out` may be y itself.
template <class T>
void softmax_columns(const arma::Mat<T>& y, arma::Mat<T>& out);
/// log-softmax of each column of y: y − max − log Σ exp(y − max), into `out` (may be y).
template <class T>
void log_softmax_columns(const arma::Mat<T>& y, arma::Mat<T>& out);

// ----- metrics ----------------------------------------------------------------------------

/// The row index of the largest entry of each column of y (n_classes × batch), into `out`
/// (length batch; no allocation when it already has that length). Ties go to the first
/// (lowest) index; NaN entries are never chosen unless a whole column is NaN (then 0).
template <class T>
void argmax_columns(const arma::Mat<T>& y, arma::uvec& out);
/// The row index of the largest entry of each column of y, as a new vector.
template <class T>
arma::uvec argmax_columns(const arma::Mat<T>& y);

/// Number of columns whose arg-max row equals the label (NaN outputs never win); allocates
/// nothing. Throws like accuracy.
template <class T>
std::size_t count_correct(const arma::Mat<T>& y, const arma::uvec& labels);

/// Fraction in [0, 1] of the columns of y whose argmax equals the label. Throws ShapeError
/// (path "accuracy") for an empty batch or a label count differing from the batch, and
/// DataError naming the sample when a label is not below y's number of rows.
template <class T>
double accuracy(const arma::Mat<T>& y, const arma::uvec& labels);

/// Fraction of the samples of a one-output binary classifier (y is 1 × batch) whose
/// prediction (y > threshold; 0 is the right threshold for logits, 0.5 for probabilities)
/// equals the 0/1 label. Errors as for accuracy; DataError for a label other than 0 or 1.
template <class T>
double binary_accuracy(const arma::Mat<T>& y, const arma::uvec& labels, double threshold = 0.0);

/// The confusion matrix (n_classes × n_classes, n_classes = rows of y): entry (i, j) counts
/// the samples of true class i predicted (argmax) as class j. Errors as for accuracy (path
/// "confusion_matrix").
template <class T>
arma::umat confusion_matrix(const arma::Mat<T>& y, const arma::uvec& labels);

}  // namespace layercache
