// Per-step losses over sequences: the softmax cross-entropy with padding steps skipped.
#include "layercache/sequence_losses.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "layercache/errors.hpp"

namespace layercache {
namespace {

constexpr const char* kName = "sequence_softmax_cross_entropy";

}  // namespace

SequenceSoftmaxCrossEntropy::SequenceSoftmaxCrossEntropy(SequenceSoftmaxCrossEntropyOptions options)
    : options_(options) {
  if (options_.n_classes == 0) throw ConfigError("n_classes must be positive, got 0", kName);
}

// Per real step, with m = max_k y_k and s = Σ_k exp(y_k − m):
//   loss = m + log s − y_label,   grad_k = (exp(y_k − m) / s − [k = label]) / N.
template <class T>
double SequenceSoftmaxCrossEntropy::compute_t(const arma::Mat<T>& y, const Targets<T>& targets,
                                              arma::Mat<T>* grad) const {
  if (!targets.has_labels())
    throw ConfigError("takes labels (one per step), not a target matrix", kName);
  const std::size_t C = options_.n_classes, batch = y.n_cols;
  if (y.n_rows == 0 || y.n_rows % C != 0 || batch == 0)
    throw ShapeError("expected y of T·" + std::to_string(C) + " rows (T ≥ 1 steps of " +
                         std::to_string(C) + " classes) and at least one sample, got (" +
                         std::to_string(y.n_rows) + " × " + std::to_string(batch) + ")",
                     kName);
  const std::size_t steps = y.n_rows / C;
  const arma::uvec& labels = targets.labels();
  if (labels.n_elem != steps * batch)
    throw ShapeError("expected " + std::to_string(steps * batch) + " labels (" +
                         std::to_string(steps) + " steps × " + std::to_string(batch) +
                         " samples), got " + std::to_string(labels.n_elem),
                     kName);
  if (grad && (grad->memptr() == y.memptr()))
    throw ConfigError("grad must not share memory with y", kName);
  if (options_.check_finite && !y.is_finite())
    throw NumericError("y holds a NaN or Inf", kName);
  std::size_t real = 0;
  for (std::size_t i = 0; i < labels.n_elem; ++i) {
    if (labels[i] == options_.padding) continue;
    if (labels[i] >= C)
      throw DataError("label " + std::to_string(labels[i]) + " of sample " +
                          std::to_string(i / steps) + ", step " + std::to_string(i % steps) +
                          " is out of range: expected a class below " + std::to_string(C) +
                          " or the padding label",
                      kName);
    ++real;
  }
  if (grad) grad->zeros(y.n_rows, batch);
  if (real == 0) return 0.0;
  const double inv_real = 1.0 / double(real);
  double total = 0.0;
  for (std::size_t b = 0; b < batch; ++b)
    for (std::size_t t = 0; t < steps; ++t) {
      const arma::uword label = labels[b * steps + t];
      if (label == options_.padding) continue;
      const T* logits = y.colptr(b) + t * C;
      double m = double(logits[0]);
      for (std::size_t k = 1; k < C; ++k) m = std::max(m, double(logits[k]));
      double s = 0.0;
      for (std::size_t k = 0; k < C; ++k) s += std::exp(double(logits[k]) - m);
      total += m + std::log(s) - double(logits[label]);
      if (!grad) continue;
      T* g = grad->colptr(b) + t * C;
      for (std::size_t k = 0; k < C; ++k)
        g[k] = T((std::exp(double(logits[k]) - m) / s - double(k == label)) * inv_real);
    }
  return total * inv_real;
}

template double SequenceSoftmaxCrossEntropy::compute_t<float>(const arma::Mat<float>&,
                                                              const Targets<float>&,
                                                              arma::Mat<float>*) const;
template double SequenceSoftmaxCrossEntropy::compute_t<double>(const arma::Mat<double>&,
                                                               const Targets<double>&,
                                                               arma::Mat<double>*) const;

}  // namespace layercache
