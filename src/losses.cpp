// Losses and metrics: each loss computes its value and gradient in one sweep over the
// columns of y, in double precision, writing into the caller's gradient buffer — nothing is
// allocated once that buffer has y's shape. Formulas and conventions: docs/losses.md.
#include "layercache/losses.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>

#include "layercache/errors.hpp"
#include "format_number.hpp"

namespace layercache {
namespace {

// Names double as error paths; kept as literals so that no string is built unless we throw.
constexpr const char* kMeanSquaredError = "mean_squared_error";
constexpr const char* kMeanAbsoluteError = "mean_absolute_error";
constexpr const char* kHuber = "huber";
constexpr const char* kBinaryCrossEntropy = "binary_cross_entropy_with_logits";
constexpr const char* kSoftmaxCrossEntropy = "softmax_cross_entropy";
constexpr const char* kNegativeLogLikelihood = "negative_log_likelihood";

std::string dims(std::size_t rows, std::size_t cols) {
  return "(" + std::to_string(rows) + " × " + std::to_string(cols) + ")";
}

std::string str(std::size_t n) { return std::to_string(n); }

template <class T>
void check_nonempty(const char* name, const arma::Mat<T>& y) {
  if (y.n_rows == 0 || y.n_cols == 0)
    throw ShapeError("expected y with at least one row and one sample (column), got " +
                         dims(y.n_rows, y.n_cols),
                     name);
}

// One label per column, each below n_classes.
void check_labels(const char* name, std::size_t batch, const arma::uvec& labels,
                  std::size_t n_classes) {
  if (labels.n_elem != batch)
    throw ShapeError("expected " + str(batch) + " labels (one per column of y), got " +
                         str(labels.n_elem),
                     name);
  for (std::size_t c = 0; c < batch; ++c)
    if (labels[c] >= n_classes)
      throw DataError("label " + str(labels[c]) + " of sample " + str(c) +
                          " (column " + str(c) + ") is out of range: expected a class below " +
                          str(n_classes),
                      name);
}

// Throws NumericError naming the first NaN or Inf of m (column-major order).
template <class T>
void check_finite_entries(const char* name, const arma::Mat<T>& m, const char* what) {
  if (m.is_finite()) return;
  for (std::size_t c = 0; c < m.n_cols; ++c)
    for (std::size_t r = 0; r < m.n_rows; ++r)
      if (!std::isfinite(m(r, c)))
        throw NumericError(std::string(what) + " holds " + detail::format_number(double(m(r, c))) +
                               " at row " + str(r) + ", column " + str(c),
                           name);
}

// Every check a loss makes before touching data, then sizes grad like y (a no-op when it
// already has y's shape or size). Labels must be below `n_classes`; 0 means the loss takes
// no labels. Nothing is written when a check fails.
template <class T>
void prepare(const char* name, const arma::Mat<T>& y, const Targets<T>& targets,
             arma::Mat<T>* grad, bool check_finite, std::size_t n_classes) {
  check_nonempty(name, y);
  if (targets.has_labels()) {
    if (n_classes == 0)
      throw ConfigError("this loss compares y with a target matrix of y's shape, got class "
                        "labels; one-hot encode them (one_hot in data.hpp) or use a "
                        "classification loss",
                        name);
    check_labels(name, y.n_cols, targets.labels(), n_classes);
  } else {
    const arma::Mat<T>& t = targets.matrix();
    if (t.n_rows != y.n_rows || t.n_cols != y.n_cols)
      throw ShapeError("expected targets of y's shape " + dims(y.n_rows, y.n_cols) + ", got " +
                           dims(t.n_rows, t.n_cols),
                       name);
  }
  if (grad && (grad == &y || grad->memptr() == y.memptr() ||
               (!targets.has_labels() && grad->memptr() == targets.matrix().memptr())))
    throw ConfigError("the gradient buffer must not share memory with y or the targets", name);
  if (check_finite) {
    check_finite_entries(name, y, "y");
    if (!targets.has_labels()) check_finite_entries(name, targets.matrix(), "targets");
  }
  if (grad) grad->set_size(y.n_rows, y.n_cols);
}

// Probability targets (the cross-entropies' target matrices): every entry in [0, 1]. A
// negative target would reward a wrong class and drive the loss below zero. NaN is left to
// the check_finite option, as for the other losses. Runs before prepare, which sizes grad.
template <class T>
void check_probabilities(const char* name, const Targets<T>& targets) {
  if (targets.has_labels()) return;
  const arma::Mat<T>& t = targets.matrix();
  for (std::size_t c = 0; c < t.n_cols; ++c)
    for (std::size_t r = 0; r < t.n_rows; ++r)
      if (t(r, c) < T(0) || t(r, c) > T(1))
        throw DataError("target " + detail::format_number(double(t(r, c))) + " at row " + str(r) +
                            " of sample " + str(c) + " is not a probability in [0, 1]",
                        name);
}

// A per-element loss and its derivative with respect to y.
struct Pointwise {
  double value;
  double grad;
};

// Sums f(y_i, t_i) over all elements, then averages (or sums) over the features and
// averages over the batch; the gradient gets the same scale. target(i) reads t_i.
template <class T, class Target, class F>
double elementwise(const arma::Mat<T>& y, Target target, arma::Mat<T>* grad,
                   FeatureReduction features, F f) {
  const double per_sample = features == FeatureReduction::mean ? double(y.n_rows) : 1.0;
  const double scale = 1.0 / (per_sample * double(y.n_cols));
  const T* yp = y.memptr();
  double total = 0.0;
  if (grad) {
    T* dy = grad->memptr();
    for (std::size_t i = 0; i < y.n_elem; ++i) {
      const Pointwise p = f(double(yp[i]), target(i));
      total += p.value;
      dy[i] = T(p.grad * scale);
    }
  } else {
    for (std::size_t i = 0; i < y.n_elem; ++i) total += f(double(yp[i]), target(i)).value;
  }
  return total * scale;
}

// Reads t_i from a dense target matrix.
template <class T>
struct MatrixTarget {
  const T* t;
  double operator()(std::size_t i) const { return double(t[i]); }
};

template <class T>
MatrixTarget<T> matrix_target(const Targets<T>& targets) {
  return {targets.matrix().memptr()};
}

double sign(double d) { return double(d > 0) - double(d < 0); }

}  // namespace

// ----- the Loss conveniences --------------------------------------------------------------

template <class T>
double Loss::value_and_grad(const arma::Mat<T>& y, const arma::uvec& labels,
                            arma::Mat<T>& grad) const {
  return value_and_grad(y, Targets<T>(labels), &grad);
}

template <class T>
double Loss::value_and_grad(const arma::Mat<T>& y, const arma::Mat<T>& targets,
                            arma::Mat<T>& grad) const {
  return value_and_grad(y, Targets<T>(targets), &grad);
}

template <class T>
LossResult<T> Loss::operator()(const arma::Mat<T>& y, const Targets<T>& targets) const {
  LossResult<T> result;
  result.value = value_and_grad(y, targets, &result.grad);
  return result;
}

template <class T>
LossResult<T> Loss::operator()(const arma::Mat<T>& y, const arma::uvec& labels) const {
  return (*this)(y, Targets<T>(labels));
}

template <class T>
LossResult<T> Loss::operator()(const arma::Mat<T>& y, const arma::Mat<T>& targets) const {
  return (*this)(y, Targets<T>(targets));
}

template <class T>
double Loss::value(const arma::Mat<T>& y, const arma::uvec& labels) const {
  return value_and_grad(y, Targets<T>(labels), static_cast<arma::Mat<T>*>(nullptr));
}

template <class T>
double Loss::value(const arma::Mat<T>& y, const arma::Mat<T>& targets) const {
  return value_and_grad(y, Targets<T>(targets), static_cast<arma::Mat<T>*>(nullptr));
}

// ----- regression and element-wise losses -------------------------------------------------

// (y − t)², derivative 2 (y − t).
template <class T>
double MeanSquaredError::compute_t(const arma::Mat<T>& y, const Targets<T>& targets,
                                   arma::Mat<T>* grad) const {
  prepare(kMeanSquaredError, y, targets, grad, options_.check_finite, 0);
  return elementwise(y, matrix_target(targets), grad, options_.features, [](double v, double t) {
    const double d = v - t;
    return Pointwise{d * d, 2.0 * d};
  });
}

// |y − t|, derivative sign(y − t) (0 at the kink, as in PyTorch).
template <class T>
double MeanAbsoluteError::compute_t(const arma::Mat<T>& y, const Targets<T>& targets,
                                    arma::Mat<T>* grad) const {
  prepare(kMeanAbsoluteError, y, targets, grad, options_.check_finite, 0);
  return elementwise(y, matrix_target(targets), grad, options_.features, [](double v, double t) {
    const double d = v - t;
    return Pointwise{std::abs(d), sign(d)};
  });
}

Huber::Huber(HuberOptions options) : BasicLoss(kHuber, false, options) {
  if (!(options.delta > 0.0) || !std::isfinite(options.delta))
    throw ConfigError("Huber needs a positive finite delta, got " + detail::format_number(options.delta),
                      kHuber);
}

Huber::Huber(double delta) : Huber(HuberOptions{delta}) {}

// ½ d² inside [−δ, δ], δ (|d| − ½ δ) outside; derivative d clipped to [−δ, δ].
template <class T>
double Huber::compute_t(const arma::Mat<T>& y, const Targets<T>& targets,
                        arma::Mat<T>* grad) const {
  prepare(kHuber, y, targets, grad, options_.check_finite, 0);
  const double delta = options_.delta;
  return elementwise(y, matrix_target(targets), grad, options_.features,
                     [delta](double v, double t) {
                       const double d = v - t;
                       const double a = std::abs(d);
                       if (a <= delta) return Pointwise{0.5 * d * d, d};
                       return Pointwise{delta * (a - 0.5 * delta), delta * sign(d)};
                     });
}

// max(z, 0) − z t + log(1 + exp(−|z|)) never exponentiates a positive number, so logits of
// any size give finite values; sigmoid(z) reuses exp(−|z|).
template <class T>
double BinaryCrossEntropyWithLogits::compute_t(const arma::Mat<T>& y, const Targets<T>& targets,
                                               arma::Mat<T>* grad) const {
  if (targets.has_labels() && y.n_rows != 1 && y.n_cols != 0)
    throw ShapeError("labels need y with 1 row (one logit per sample), got " + str(y.n_rows) +
                         " rows; pass a target matrix of y's shape for several outputs",
                     kBinaryCrossEntropy);
  check_probabilities(kBinaryCrossEntropy, targets);
  prepare(kBinaryCrossEntropy, y, targets, grad, options_.check_finite, 2);
  const auto loss = [](double z, double t) {
    const double e = std::exp(-std::abs(z));
    const double sigmoid = z >= 0.0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
    return Pointwise{std::max(z, 0.0) - z * t + std::log1p(e), sigmoid - t};
  };
  if (targets.has_labels()) {
    const arma::uvec& labels = targets.labels();
    return elementwise(y, [&labels](std::size_t i) { return double(labels[i]); }, grad,
                       options_.features, loss);
  }
  return elementwise(y, matrix_target(targets), grad, options_.features, loss);
}

// ----- classification losses --------------------------------------------------------------

SoftmaxCrossEntropy::SoftmaxCrossEntropy(SoftmaxCrossEntropyOptions options)
    : BasicLoss(kSoftmaxCrossEntropy, true, options) {
  if (!(options.label_smoothing >= 0.0 && options.label_smoothing <= 1.0))
    throw ConfigError("label_smoothing must be in [0, 1], got " +
                          std::to_string(options.label_smoothing),
                      kSoftmaxCrossEntropy);
}

// Per column, with m = max_k y_k, s = Σ_k exp(y_k − m) and log-softmax_k = y_k − m − log s:
//   value = Σ_k q_k (m − y_k + log s),   grad_k = (exp(y_k − m) / s · Σ_j q_j − q_k) / batch,
// where q = (1 − ε) target + ε / n_classes. Each exponent is ≤ 0, so nothing overflows, and
// a class with q_k = 0 adds nothing even when its logit is −inf.
template <class T>
double SoftmaxCrossEntropy::compute_t(const arma::Mat<T>& y, const Targets<T>& targets,
                                      arma::Mat<T>* grad) const {
  check_probabilities(kSoftmaxCrossEntropy, targets);
  prepare(kSoftmaxCrossEntropy, y, targets, grad, options_.check_finite, y.n_rows);
  const std::size_t n_classes = y.n_rows;
  const std::size_t batch = y.n_cols;
  const double keep = 1.0 - options_.label_smoothing;
  const double spread = options_.label_smoothing / double(n_classes);
  const bool labels = targets.has_labels();
  double total = 0.0;
  for (std::size_t c = 0; c < batch; ++c) {
    const T* yc = y.colptr(c);                         // logits (n_classes)
    const T* tc = labels ? nullptr : targets.matrix().colptr(c);
    T* dc = grad ? grad->colptr(c) : nullptr;          // exp(y − m), then the gradient
    double m = double(yc[0]);
    for (std::size_t k = 1; k < n_classes; ++k) m = std::max(m, double(yc[k]));
    double s = 0.0;
    for (std::size_t k = 0; k < n_classes; ++k) {
      const double e = std::exp(double(yc[k]) - m);
      s += e;
      if (dc) dc[k] = T(e);
    }
    const double log_s = std::log(s);
    const std::size_t label = labels ? targets.labels()[c] : 0;
    double q_sum = 0.0;
    for (std::size_t k = 0; k < n_classes; ++k) {
      const double target = labels ? double(k == label) : double(tc[k]);
      const double q = keep * target + spread;
      q_sum += q;
      if (q != 0.0) total += q * (m - double(yc[k]) + log_s);
    }
    if (dc) {
      const double inv_s = 1.0 / s;
      for (std::size_t k = 0; k < n_classes; ++k) {
        const double target = labels ? double(k == label) : double(tc[k]);
        const double q = keep * target + spread;
        dc[k] = T((double(dc[k]) * inv_s * q_sum - q) / double(batch));
      }
    }
  }
  return total / double(batch);
}

// −y_label (or −Σ_k t_k y_k) per sample, averaged over the batch.
template <class T>
double NegativeLogLikelihood::compute_t(const arma::Mat<T>& y, const Targets<T>& targets,
                                        arma::Mat<T>* grad) const {
  check_probabilities(kNegativeLogLikelihood, targets);
  prepare(kNegativeLogLikelihood, y, targets, grad, options_.check_finite, y.n_rows);
  const double inv_batch = 1.0 / double(y.n_cols);
  double total = 0.0;
  if (targets.has_labels()) {
    const arma::uvec& labels = targets.labels();
    if (grad) grad->zeros();
    for (std::size_t c = 0; c < y.n_cols; ++c) {
      total -= double(y(labels[c], c));
      if (grad) (*grad)(labels[c], c) = T(-inv_batch);
    }
    return total * inv_batch;
  }
  const T* yp = y.memptr();
  const T* tp = targets.matrix().memptr();
  T* dy = grad ? grad->memptr() : nullptr;
  for (std::size_t i = 0; i < y.n_elem; ++i) {
    const double t = double(tp[i]);
    if (t != 0.0) total -= t * double(yp[i]);  // a log-probability of −inf with t = 0 adds 0
    if (dy) dy[i] = T(-t * inv_batch);
  }
  return total * inv_batch;
}

// ----- column-wise softmax ----------------------------------------------------------------

namespace {

// The largest of a column's n values, in double (the shift that keeps exp from overflowing).
template <class T>
double column_max(const T* v, std::size_t n) {
  double m = double(v[0]);
  for (std::size_t k = 1; k < n; ++k) m = std::max(m, double(v[k]));
  return m;
}

}  // namespace

template <class T>
void softmax_columns(const arma::Mat<T>& y, arma::Mat<T>& out) {
  out.set_size(y.n_rows, y.n_cols);
  for (std::size_t c = 0; c < y.n_cols && y.n_rows > 0; ++c) {
    const T* yc = y.colptr(c);
    T* oc = out.colptr(c);
    const double m = column_max(yc, y.n_rows);
    double s = 0.0;
    for (std::size_t k = 0; k < y.n_rows; ++k) {
      const double e = std::exp(double(yc[k]) - m);
      s += e;
      oc[k] = T(e);
    }
    const double inv_s = 1.0 / s;
    for (std::size_t k = 0; k < y.n_rows; ++k) oc[k] = T(double(oc[k]) * inv_s);
  }
}

template <class T>
void log_softmax_columns(const arma::Mat<T>& y, arma::Mat<T>& out) {
  out.set_size(y.n_rows, y.n_cols);
  for (std::size_t c = 0; c < y.n_cols && y.n_rows > 0; ++c) {
    const T* yc = y.colptr(c);
    const double m = column_max(yc, y.n_rows);
    double s = 0.0;
    for (std::size_t k = 0; k < y.n_rows; ++k) s += std::exp(double(yc[k]) - m);
    const double shift = m + std::log(s);
    for (std::size_t k = 0; k < y.n_rows; ++k) out(k, c) = T(double(yc[k]) - shift);
  }
}

// ----- metrics ----------------------------------------------------------------------------

template <class T>
void argmax_columns(const arma::Mat<T>& y, arma::uvec& out) {
  if (y.n_rows == 0 && y.n_cols > 0)
    throw ShapeError("expected y with at least one row, got " + dims(y.n_rows, y.n_cols),
                     "argmax_columns");
  out.set_size(y.n_cols);
  for (std::size_t c = 0; c < y.n_cols; ++c) {
    const T* yc = y.colptr(c);
    std::size_t best = 0;
    for (std::size_t k = 1; k < y.n_rows; ++k)
      if (yc[k] > yc[best] || (std::isnan(yc[best]) && !std::isnan(yc[k]))) best = k;
    out[c] = best;
  }
}

template <class T>
arma::uvec argmax_columns(const arma::Mat<T>& y) {
  arma::uvec out;
  argmax_columns(y, out);
  return out;
}

template <class T>
std::size_t count_correct(const arma::Mat<T>& y, const arma::uvec& labels) {
  check_nonempty("accuracy", y);
  check_labels("accuracy", y.n_cols, labels, y.n_rows);
  std::size_t correct = 0;
  for (std::size_t c = 0; c < y.n_cols; ++c) {
    const T* yc = y.colptr(c);
    std::size_t best = 0;
    for (std::size_t k = 1; k < y.n_rows; ++k)
      if (yc[k] > yc[best] || (std::isnan(yc[best]) && !std::isnan(yc[k]))) best = k;
    correct += best == labels[c];
  }
  return correct;
}

template <class T>
double accuracy(const arma::Mat<T>& y, const arma::uvec& labels) {
  return double(count_correct(y, labels)) / double(y.n_cols);
}

template <class T>
double binary_accuracy(const arma::Mat<T>& y, const arma::uvec& labels, double threshold) {
  check_nonempty("binary_accuracy", y);
  if (y.n_rows != 1)
    throw ShapeError("expected y with 1 row (one output per sample), got " + str(y.n_rows) +
                         " rows; use accuracy for one output per class",
                     "binary_accuracy");
  check_labels("binary_accuracy", y.n_cols, labels, 2);
  std::size_t correct = 0;
  for (std::size_t c = 0; c < y.n_cols; ++c)
    correct += (double(y[c]) > threshold) == (labels[c] == 1);
  return double(correct) / double(y.n_cols);
}

template <class T>
arma::umat confusion_matrix(const arma::Mat<T>& y, const arma::uvec& labels) {
  check_nonempty("confusion_matrix", y);
  check_labels("confusion_matrix", y.n_cols, labels, y.n_rows);
  arma::umat counts(y.n_rows, y.n_rows, arma::fill::zeros);
  arma::uvec predicted;
  argmax_columns(y, predicted);
  for (std::size_t c = 0; c < y.n_cols; ++c) ++counts(labels[c], predicted[c]);
  return counts;
}

// ----- explicit instantiation -------------------------------------------------------------

#define LAYERCACHE_INSTANTIATE_LOSSES(T)                                                      \
  template double Loss::value_and_grad<T>(const arma::Mat<T>&, const arma::uvec&,             \
                                          arma::Mat<T>&) const;                               \
  template double Loss::value_and_grad<T>(const arma::Mat<T>&, const arma::Mat<T>&,           \
                                          arma::Mat<T>&) const;                               \
  template LossResult<T> Loss::operator()<T>(const arma::Mat<T>&, const arma::uvec&) const;   \
  template LossResult<T> Loss::operator()<T>(const arma::Mat<T>&, const arma::Mat<T>&) const; \
  template LossResult<T> Loss::operator()<T>(const arma::Mat<T>&, const Targets<T>&) const;   \
  template double Loss::value<T>(const arma::Mat<T>&, const arma::uvec&) const;               \
  template double Loss::value<T>(const arma::Mat<T>&, const arma::Mat<T>&) const;             \
  template double MeanSquaredError::compute_t<T>(const arma::Mat<T>&, const Targets<T>&,      \
                                                 arma::Mat<T>*) const;                        \
  template double MeanAbsoluteError::compute_t<T>(const arma::Mat<T>&, const Targets<T>&,     \
                                                  arma::Mat<T>*) const;                       \
  template double Huber::compute_t<T>(const arma::Mat<T>&, const Targets<T>&, arma::Mat<T>*)  \
      const;                                                                                  \
  template double BinaryCrossEntropyWithLogits::compute_t<T>(                                 \
      const arma::Mat<T>&, const Targets<T>&, arma::Mat<T>*) const;                           \
  template double SoftmaxCrossEntropy::compute_t<T>(const arma::Mat<T>&, const Targets<T>&,   \
                                                    arma::Mat<T>*) const;                     \
  template double NegativeLogLikelihood::compute_t<T>(const arma::Mat<T>&, const Targets<T>&, \
                                                      arma::Mat<T>*) const;                   \
  template void softmax_columns<T>(const arma::Mat<T>&, arma::Mat<T>&);                       \
  template void log_softmax_columns<T>(const arma::Mat<T>&, arma::Mat<T>&);                   \
  template void argmax_columns<T>(const arma::Mat<T>&, arma::uvec&);                          \
  template arma::uvec argmax_columns<T>(const arma::Mat<T>&);                                 \
  template std::size_t count_correct<T>(const arma::Mat<T>&, const arma::uvec&);               \
  template double accuracy<T>(const arma::Mat<T>&, const arma::uvec&);                        \
  template double binary_accuracy<T>(const arma::Mat<T>&, const arma::uvec&, double);         \
  template arma::umat confusion_matrix<T>(const arma::Mat<T>&, const arma::uvec&);

LAYERCACHE_INSTANTIATE_LOSSES(float)
LAYERCACHE_INSTANTIATE_LOSSES(double)

#undef LAYERCACHE_INSTANTIATE_LOSSES

}  // namespace layercache
