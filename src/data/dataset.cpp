// Data sets, shuffling and batches (the halves of copy_batch the training step uses on its
// threads), the train/validation split, standardization and one-hot encoding.
#include "layercache/data.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "../batch_gather.hpp"

namespace layercache {
namespace {

/// Throws DataError when labels or targets do not have one entry per sample (O(1)).
template <class T>
void check_counts(const Dataset<T>& data) {
  const std::size_t n = data.size();
  if (data.has_labels() && data.labels.n_elem != n) {
    throw DataError("expected one label per sample (" + std::to_string(n) + "), found " +
                    std::to_string(data.labels.n_elem) + " labels");
  }
  if (data.has_targets() && data.targets.n_cols != n) {
    throw DataError("expected one target column per sample (" + std::to_string(n) +
                    "), found " + std::to_string(data.targets.n_cols) + " columns");
  }
}

/// Copies the columns src[:, at[j]] into dst[:, j] for every j in [first, last); dst is
/// already sized.
template <class E>
void copy_columns(const arma::Mat<E>& src, const arma::uword* at, std::size_t first,
                  std::size_t last, arma::Mat<E>& dst) noexcept {
  for (std::size_t j = first; j < last; ++j)
    std::copy_n(src.colptr(at[j]), src.n_rows, dst.colptr(j));
}

/// Throws DataError unless every indices[first..first+count) is below n.
void check_indices(const arma::uvec& indices, std::size_t first, std::size_t count,
                   std::size_t n, const char* what) {
  for (std::size_t j = first; j < first + count; ++j) {
    if (indices[j] >= n) {
      throw DataError(std::string(what) + " position " + std::to_string(j) + " holds sample index " +
                      std::to_string(indices[j]) + ", but the data set has " + std::to_string(n) +
                      " samples");
    }
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Dataset.

template <class T>
Dataset<T> Dataset<T>::subset(const arma::uvec& indices) const {
  check_counts(*this);
  check_indices(indices, 0, indices.n_elem, size(), "subset index");
  Dataset out;
  out.shape = shape;
  out.n_classes = n_classes;
  out.targets_are_inputs = targets_are_inputs;
  const std::size_t n = indices.n_elem;
  out.x.set_size(x.n_rows, n);
  copy_columns(x, indices.memptr(), 0, n, out.x);
  if (has_labels()) out.labels = labels.elem(indices);
  if (has_targets()) {
    out.targets.set_size(targets.n_rows, n);
    copy_columns(targets, indices.memptr(), 0, n, out.targets);
  }
  return out;
}

template <class T>
void Dataset<T>::check() const {
  if (x.n_rows != shape.size() && !(x.is_empty() && shape.rank() == 0)) {
    throw ShapeError("x has " + std::to_string(x.n_rows) + " rows, but the sample shape " +
                     shape.str() + " has " + std::to_string(shape.size()) + " elements");
  }
  check_counts(*this);
  if (has_labels() && has_targets()) {
    throw DataError("a data set holds labels or targets, not both; found " +
                    std::to_string(labels.n_elem) + " labels and " +
                    std::to_string(targets.n_rows) + " × " + std::to_string(targets.n_cols) +
                    " targets");
  }
  if (targets_are_inputs && (has_labels() || has_targets())) {
    throw DataError(std::string("a data set whose targets are its inputs holds no ") +
                    (has_labels() ? "labels" : "targets") + " of its own; found " +
                    (has_labels() ? std::to_string(labels.n_elem) + " labels"
                                  : std::to_string(targets.n_rows) + " × " +
                                        std::to_string(targets.n_cols) + " targets"));
  }
  for (arma::uword i = 0; i < labels.n_elem; ++i) {
    if (labels[i] >= n_classes) {
      throw DataError("label " + std::to_string(labels[i]) + " of sample " + std::to_string(i) +
                      " is out of range: expected labels below n_classes = " +
                      std::to_string(n_classes));
    }
  }
}

// ---------------------------------------------------------------------------------------
// Shuffling and batches.

void shuffle(arma::uvec& indices, Rng& rng) {
  for (arma::uword i = indices.n_elem; i > 1; --i) {
    const auto j = static_cast<arma::uword>(rng.below(i));
    std::swap(indices[i - 1], indices[j]);
  }
}

arma::uvec shuffled_indices(std::size_t n, Rng& rng) {
  arma::uvec indices(n);
  for (std::size_t i = 0; i < n; ++i) indices[i] = i;
  shuffle(indices, rng);
  return indices;
}

BatchPlan batches(std::size_t n, std::size_t batch_size, bool drop_last, Rng* rng) {
  if (batch_size == 0) throw ConfigError("batch_size must be positive, found 0");
  BatchPlan plan;
  plan.batch_size = batch_size;
  if (rng != nullptr) {
    plan.order = shuffled_indices(n, *rng);
  } else {
    plan.order.set_size(n);
    for (std::size_t i = 0; i < n; ++i) plan.order[i] = i;
  }
  const std::size_t n_batches = drop_last ? n / batch_size : (n + batch_size - 1) / batch_size;
  plan.ranges.reserve(n_batches);
  for (std::size_t b = 0; b < n_batches; ++b)
    plan.ranges.push_back({b * batch_size, std::min(n, (b + 1) * batch_size)});
  return plan;
}

template <class T>
void detail::prepare_batch(const Dataset<T>& data, const arma::uvec& order, std::size_t begin,
                           std::size_t end, arma::Mat<T>& x_out, arma::uvec& labels_out,
                           arma::Mat<T>& targets_out) {
  if (begin > end || end > order.n_elem) {
    throw ConfigError("batch range [" + std::to_string(begin) + ", " + std::to_string(end) +
                      ") is outside the order of " + std::to_string(order.n_elem) +
                      " positions");
  }
  check_counts(data);
  const std::size_t count = end - begin;
  check_indices(order, begin, count, data.size(), "order");  // before any buffer changes

  x_out.set_size(data.x.n_rows, count);
  if (data.has_labels())
    labels_out.set_size(count);
  else
    labels_out.reset();
  if (data.has_targets())
    targets_out.set_size(data.targets.n_rows, count);
  else
    targets_out.reset();
}

template <class T>
void detail::fill_batch(const Dataset<T>& data, const arma::uvec& order, std::size_t begin,
                        std::size_t first, std::size_t last, arma::Mat<T>& x_out,
                        arma::uvec& labels_out, arma::Mat<T>& targets_out) noexcept {
  const arma::uword* at = order.memptr() + begin;
  copy_columns(data.x, at, first, last, x_out);
  if (data.has_labels())
    for (std::size_t j = first; j < last; ++j) labels_out[j] = data.labels[at[j]];
  if (data.has_targets()) copy_columns(data.targets, at, first, last, targets_out);
}

template <class T>
void copy_batch(const Dataset<T>& data, const arma::uvec& order, std::size_t begin,
                std::size_t end, arma::Mat<T>& x_out, arma::uvec& labels_out,
                arma::Mat<T>& targets_out) {
  detail::prepare_batch(data, order, begin, end, x_out, labels_out, targets_out);
  detail::fill_batch(data, order, begin, 0, end - begin, x_out, labels_out, targets_out);
}

// ---------------------------------------------------------------------------------------
// Splits, standardization, one-hot.

template <class T>
std::pair<Dataset<T>, Dataset<T>> train_validation_split(const Dataset<T>& data,
                                                         double validation_fraction, Rng& rng) {
  if (!(validation_fraction >= 0.0 && validation_fraction <= 1.0)) {
    throw ConfigError("validation_fraction must be in [0, 1], found " +
                      std::to_string(validation_fraction));
  }
  check_counts(data);
  const std::size_t n = data.size();
  const auto n_validation = std::min(
      n, static_cast<std::size_t>(std::floor(validation_fraction * static_cast<double>(n) + 0.5)));
  const arma::uvec order = shuffled_indices(n, rng);
  arma::uvec validation(n_validation);
  arma::uvec train(n - n_validation);
  std::copy_n(order.memptr(), n_validation, validation.memptr());
  std::copy_n(order.memptr() + n_validation, n - n_validation, train.memptr());
  std::sort(validation.begin(), validation.end());
  std::sort(train.begin(), train.end());
  return {data.subset(train), data.subset(validation)};
}

template <class T>
Standardizer<T> Standardizer<T>::fit(const arma::Mat<T>& x) {
  const std::size_t n_features = x.n_rows;
  const std::size_t n = x.n_cols;
  if (n == 0) throw DataError("cannot fit a standardizer on data without samples");
  std::vector<double> sum(n_features, 0.0);
  std::vector<char> constant(n_features, 1);
  for (std::size_t j = 0; j < n; ++j) {
    const T* column = x.colptr(j);
    for (std::size_t i = 0; i < n_features; ++i) {
      if (!std::isfinite(column[i])) {
        throw DataError("feature " + std::to_string(i) + " of sample " + std::to_string(j) +
                        " is not finite (" + std::to_string(column[i]) + ")");
      }
      sum[i] += column[i];
      if (column[i] != x(i, 0)) constant[i] = 0;
    }
  }
  std::vector<double> squares(n_features, 0.0);
  for (std::size_t j = 0; j < n; ++j) {
    const T* column = x.colptr(j);
    for (std::size_t i = 0; i < n_features; ++i) {
      const double d = column[i] - sum[i] / static_cast<double>(n);
      squares[i] += d * d;
    }
  }
  Standardizer out;
  out.mean.set_size(n_features);
  out.scale.set_size(n_features);
  for (std::size_t i = 0; i < n_features; ++i) {
    // A constant feature keeps its exact value as mean (so it becomes exactly 0) and scale 1.
    out.mean[i] = constant[i] ? x(i, 0) : static_cast<T>(sum[i] / static_cast<double>(n));
    out.scale[i] = constant[i] ? T(1) : static_cast<T>(std::sqrt(squares[i] / static_cast<double>(n)));
  }
  return out;
}

template <class T>
void Standardizer<T>::apply(arma::Mat<T>& x) const {
  if (x.n_rows != mean.n_elem) {
    throw ShapeError("the standardizer was fitted on " + std::to_string(mean.n_elem) +
                     " features, got data with " + std::to_string(x.n_rows) + " rows");
  }
  for (std::size_t j = 0; j < x.n_cols; ++j) {
    T* column = x.colptr(j);
    for (std::size_t i = 0; i < x.n_rows; ++i) column[i] = (column[i] - mean[i]) / scale[i];
  }
}

template <class T>
arma::Mat<T> Standardizer<T>::transform(const arma::Mat<T>& x) const {
  arma::Mat<T> out = x;
  apply(out);
  return out;
}

template <class T>
arma::Mat<T> one_hot(const arma::uvec& labels, std::size_t n_classes) {
  for (arma::uword i = 0; i < labels.n_elem; ++i) {
    if (labels[i] >= n_classes) {
      throw DataError("label " + std::to_string(labels[i]) + " of sample " + std::to_string(i) +
                      " is out of range: expected labels below n_classes = " +
                      std::to_string(n_classes));
    }
  }
  arma::Mat<T> out(n_classes, labels.n_elem, arma::fill::zeros);
  for (arma::uword i = 0; i < labels.n_elem; ++i) out(labels[i], i) = T(1);
  return out;
}

// ---------------------------------------------------------------------------------------
// Explicit instantiations for float and double.

template struct Dataset<float>;
template struct Dataset<double>;
template struct Standardizer<float>;
template struct Standardizer<double>;
template void detail::prepare_batch<float>(const Dataset<float>&, const arma::uvec&, std::size_t,
                                           std::size_t, arma::Mat<float>&, arma::uvec&,
                                           arma::Mat<float>&);
template void detail::prepare_batch<double>(const Dataset<double>&, const arma::uvec&,
                                            std::size_t, std::size_t, arma::Mat<double>&,
                                            arma::uvec&, arma::Mat<double>&);
template void detail::fill_batch<float>(const Dataset<float>&, const arma::uvec&, std::size_t,
                                        std::size_t, std::size_t, arma::Mat<float>&,
                                        arma::uvec&, arma::Mat<float>&) noexcept;
template void detail::fill_batch<double>(const Dataset<double>&, const arma::uvec&, std::size_t,
                                         std::size_t, std::size_t, arma::Mat<double>&,
                                         arma::uvec&, arma::Mat<double>&) noexcept;
template void copy_batch<float>(const Dataset<float>&, const arma::uvec&, std::size_t,
                                std::size_t, arma::Mat<float>&, arma::uvec&, arma::Mat<float>&);
template void copy_batch<double>(const Dataset<double>&, const arma::uvec&, std::size_t,
                                 std::size_t, arma::Mat<double>&, arma::uvec&,
                                 arma::Mat<double>&);
template std::pair<Dataset<float>, Dataset<float>> train_validation_split<float>(
    const Dataset<float>&, double, Rng&);
template std::pair<Dataset<double>, Dataset<double>> train_validation_split<double>(
    const Dataset<double>&, double, Rng&);
template arma::Mat<float> one_hot<float>(const arma::uvec&, std::size_t);
template arma::Mat<double> one_hot<double>(const arma::uvec&, std::size_t);

}  // namespace layercache
