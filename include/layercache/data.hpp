// Data sets and everything between a file on disk and a training step: IDX (MNIST,
// Fashion-MNIST) and CSV readers, reproducible shuffling and mini-batches drawn from an
// explicit Rng, copying batches into reused buffers, train/validation splits,
// standardization and one-hot encoding (docs/data.md).
//
// Columns are samples (docs/contract.md): a data set's x is (shape.size() × n). An image sample is
// one column holding its channels one after another, each channel an (height × width) matrix
// in column-major order — the memory order of arma::Cube<T>(height, width, channels).
//
// This header is C++17-compatible; the templates are compiled once in src/data.cpp for
// float and double.
#pragma once

#include <armadillo>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "layercache/errors.hpp"
#include "layercache/rng.hpp"
#include "layercache/shape.hpp"

namespace layercache {

/// The most classes a data set read from a file may have (2^24, about 16.8 million): a label
/// at or above it is a DataError, and an n_classes above it a ConfigError, when read_csv or
/// read_idx reads a file. A larger label is a damaged file, or a column of values that are
/// not class labels (one-hot targets for that many classes could not be allocated anyway).
inline constexpr std::size_t max_classes = std::size_t(1) << 24;

/// A set of n samples: features, per-sample shape, and either class labels or targets.
template <class T = float>
struct Dataset {
  /// Features, (shape.size() × n): one sample per column.
  arma::Mat<T> x;
  /// Shape of one sample, e.g. (1, 28, 28) or (4).
  Shape shape;
  /// Class index of each sample, (n); empty for regression data.
  arma::uvec labels;
  /// Regression or probability targets, (n_targets × n); empty when labels are used.
  arma::Mat<T> targets;
  /// Number of classes; every label is below it. 0 when there are no labels.
  std::size_t n_classes = 0;
  /// True when every sample's target is the sample itself (an autoencoder's data): losses
  /// compare the network's output with x, so the images are not copied into `targets`,
  /// which stays empty, as do `labels`. See inputs_as_targets.
  bool targets_are_inputs = false;

  /// Number of samples (columns of x).
  std::size_t size() const noexcept { return x.n_cols; }
  /// True when the samples carry class labels.
  bool has_labels() const noexcept { return !labels.is_empty(); }
  /// True when the samples carry regression or probability targets in `targets` (false
  /// when targets_are_inputs).
  bool has_targets() const noexcept { return !targets.is_empty(); }
  /// The samples at `indices`, in that order (repeats allowed); shape and n_classes are
  /// kept. Throws DataError naming the first index that is not below size().
  Dataset subset(const arma::uvec& indices) const;
  /// Throws ShapeError when x's rows differ from shape.size(), and DataError when labels or
  /// targets do not have one entry per sample, when both are present (or either together
  /// with targets_are_inputs), or when a label is not below n_classes (naming the sample
  /// index).
  void check() const;
};

// ---------------------------------------------------------------------------------------
// IDX files (MNIST, Fashion-MNIST). Plain or gzip-compressed; read transparently.

/// Images of an IDX file (magic 0x00000803: unsigned bytes, 3 dimensions n × rows × cols),
/// as a (rows*cols × n) matrix scaled to [0, 1]. Each image is stored column-major (pixel
/// (r, c) at row r + c*rows). Throws IoError when the file cannot be opened and DataError
/// naming the path for a wrong magic number or data type, a truncated or corrupt file, or a
/// header claiming more or less data than the file holds. Memory grows only as data
/// actually arrives, so a forged header cannot trigger a huge allocation.
template <class T = float>
arma::Mat<T> read_idx_images(const std::string& path);

/// Labels of an IDX file (magic 0x00000801: unsigned bytes, 1 dimension n). Errors as for
/// read_idx_images.
arma::uvec read_idx_labels(const std::string& path);

/// An image data set from an IDX images file and an IDX labels file: shape (1, rows, cols).
/// `n_classes` = 0 takes max label + 1 from the data; a positive value is checked
/// (DataError naming the first sample whose label is not below it; ConfigError when it is
/// above max_classes). Throws DataError when the two files hold different numbers of samples.
template <class T = float>
Dataset<T> read_idx(const std::string& images_path, const std::string& labels_path,
                    std::size_t n_classes = 0);

/// Fashion-MNIST (or MNIST: same file names) from `dir`: split "train" (60000 samples) or
/// "test" (10000; "t10k" is accepted too). Reads `<prefix>-images-idx3-ubyte[.gz]` and
/// `<prefix>-labels-idx1-ubyte[.gz]`, preferring the .gz file. n_classes is 10. Throws
/// ConfigError for another split name and IoError when a file is missing.
template <class T = float>
Dataset<T> load_fashion_mnist(const std::string& dir, const std::string& split);

// ---------------------------------------------------------------------------------------
// CSV files: numbers only, one sample per line. Plain or gzip-compressed.

/// How read_csv interprets a file.
struct CsvOptions {
  /// The first line is a header and is skipped.
  bool header = true;
  /// 0-based column holding integer class labels; -1 for none. Counting from the end is
  /// not supported (-1 already means "no labels"); other negative values are a ConfigError.
  int label_column = -1;
  /// 0-based columns holding regression targets, in the order they appear in `targets`.
  /// Cannot be combined with label_column.
  std::vector<std::size_t> target_columns{};
  /// Field separator.
  char delimiter = ',';
  /// Number of classes; 0 takes max label + 1 from the data. At most max_classes.
  std::size_t n_classes = 0;
  /// Per-sample shape of the feature columns; rank 0 means (number of feature columns).
  Shape shape{};
};

/// A data set from a CSV file of numbers. Fields are trimmed of spaces and tabs; blank
/// lines and a trailing '\r' are ignored. Every column that is neither the label column nor
/// a target column is a feature, in file order. Throws IoError when the file cannot be
/// opened; DataError naming the file, line and column for a non-numeric, empty or
/// non-finite field, a label that is not a non-negative integer below n_classes (and below
/// max_classes),
/// a row with a different number of fields than the first data row, or a file without data
/// rows; ConfigError when a label or target column does not exist or n_classes is above
/// max_classes; ShapeError when
/// `options.shape` does not match the number of feature columns.
template <class T = float>
Dataset<T> read_csv(const std::string& path, const CsvOptions& options = {});

/// The samples of `data` as a data set whose target is its input, for an autoencoder
/// trained with a reconstruction loss (MeanSquaredError): x and shape are kept, labels and
/// targets left out, n_classes 0 and targets_are_inputs set. Copies no image: the result's
/// x is a read-only view of data.x (like Targets, a view: `data` must outlive it and keep
/// its x unchanged; copying the result copies the images). For a temporary data set, the
/// overload below takes the images over instead.
template <class T>
Dataset<T> inputs_as_targets(const Dataset<T>& data) {
  Dataset<T> out;
  out.x = arma::Mat<T>(const_cast<T*>(data.x.memptr()), data.x.n_rows, data.x.n_cols,
                       /*copy_aux_mem=*/false, /*strict=*/true);
  out.shape = data.shape;
  out.targets_are_inputs = true;
  return out;
}

/// inputs_as_targets of a data set given up by the caller (`inputs_as_targets(std::move(d))`
/// or a temporary): the result owns the images, moved over without a copy.
template <class T>
Dataset<T> inputs_as_targets(Dataset<T>&& data) {
  Dataset<T> out;
  out.x = std::move(data.x);
  out.shape = data.shape;
  out.targets_are_inputs = true;
  return out;
}

// ---------------------------------------------------------------------------------------
// Shuffling and mini-batches. Every random draw comes from the caller's Rng.

/// The numbers 0..n-1 in an order drawn from `rng` (Fisher–Yates with rng.below).
arma::uvec shuffled_indices(std::size_t n, Rng& rng);

/// Shuffles `indices` in place (Fisher–Yates with rng.below); allocates nothing.
void shuffle(arma::uvec& indices, Rng& rng);

/// Positions [begin, end) of one mini-batch in a BatchPlan's order.
struct BatchRange {
  /// First position.
  std::size_t begin = 0;
  /// One past the last position.
  std::size_t end = 0;
  /// Number of samples in the batch.
  std::size_t size() const noexcept { return end - begin; }
};

/// One epoch of mini-batches: a sample order and consecutive ranges of it.
struct BatchPlan {
  /// Sample indices in the order the epoch visits them, (n).
  arma::uvec order;
  /// The batches; every one holds batch_size samples except possibly the last.
  std::vector<BatchRange> ranges;
  /// Samples per full batch.
  std::size_t batch_size = 0;

  /// Number of batches.
  std::size_t size() const noexcept { return ranges.size(); }
  /// Batch i.
  const BatchRange& operator[](std::size_t i) const { return ranges[i]; }
  /// Draws a new order in place for the next epoch, keeping the ranges; allocates nothing.
  void reshuffle(Rng& rng) { shuffle(order, rng); }
};

/// Mini-batches of `batch_size` over n samples, in an order drawn from `*rng` (or 0..n-1
/// when rng is null). With drop_last, a final batch smaller than batch_size is left out
/// (so n < batch_size gives no batches); otherwise it is kept. Throws ConfigError when
/// batch_size is 0.
BatchPlan batches(std::size_t n, std::size_t batch_size, bool drop_last, Rng* rng = nullptr);

/// Copies the samples order[begin..end) of `data` into x_out (features × count), labels_out
/// (count, or empty when the data has no labels) and targets_out (n_targets × count, or
/// empty). The buffers are resized in place: when the batch size is unchanged (or smaller)
/// their memory is reused and nothing is allocated. Throws ConfigError for a range outside
/// `order` and DataError for an index that is not below data.size().
template <class T>
void copy_batch(const Dataset<T>& data, const arma::uvec& order, std::size_t begin,
                std::size_t end, arma::Mat<T>& x_out, arma::uvec& labels_out,
                arma::Mat<T>& targets_out);

/// Buffers for one mini-batch, reused from step to step.
template <class T = float>
struct Batch {
  /// Features, (shape.size() × batch).
  arma::Mat<T> x;
  /// Labels, (batch); empty for data without labels.
  arma::uvec labels;
  /// Targets, (n_targets × batch); empty for data without targets.
  arma::Mat<T> targets;
};

/// copy_batch into a Batch for the positions of `range` in plan.order.
template <class T>
void copy_batch(const Dataset<T>& data, const BatchPlan& plan, const BatchRange& range,
                Batch<T>& out) {
  copy_batch(data, plan.order, range.begin, range.end, out.x, out.labels, out.targets);
}

// ---------------------------------------------------------------------------------------
// Splits, standardization, one-hot encoding.

/// Splits `data` at random into (train, validation): validation gets round(fraction * n)
/// samples drawn from `rng`, train the rest. Both keep the samples' original relative order.
/// Throws ConfigError unless 0 <= validation_fraction <= 1.
template <class T>
std::pair<Dataset<T>, Dataset<T>> train_validation_split(const Dataset<T>& data,
                                                         double validation_fraction, Rng& rng);

/// Per-feature standardization (x - mean) / scale, fitted on one data set (usually the
/// training set) and applied unchanged to others. Immutable once fitted.
template <class T = float>
struct Standardizer {
  /// Mean of each feature, (n_features).
  arma::Col<T> mean;
  /// Divisor of each feature, (n_features): its population standard deviation, or 1 when
  /// the feature is constant (its standard deviation is zero to within rounding), so
  /// constant features become 0 instead of NaN.
  arma::Col<T> scale;

  /// Fits on the rows (features) of x, (n_features × n), accumulating in double. Throws
  /// DataError when x has no samples.
  static Standardizer fit(const arma::Mat<T>& x);
  /// Fits on data.x.
  static Standardizer fit(const Dataset<T>& data) { return fit(data.x); }
  /// Standardizes x in place; throws ShapeError when its rows differ from n_features.
  void apply(arma::Mat<T>& x) const;
  /// Standardizes data.x in place.
  void apply(Dataset<T>& data) const { apply(data.x); }
  /// A standardized copy of x.
  arma::Mat<T> transform(const arma::Mat<T>& x) const;
};

/// One-hot columns, (n_classes × n): column i has a 1 in row labels[i]. Throws DataError
/// naming the first sample whose label is not below n_classes.
template <class T = float>
arma::Mat<T> one_hot(const arma::uvec& labels, std::size_t n_classes);

// Compiled once in src/data.cpp.
extern template struct Dataset<float>;
extern template struct Dataset<double>;
extern template struct Standardizer<float>;
extern template struct Standardizer<double>;
extern template arma::Mat<float> read_idx_images<float>(const std::string&);
extern template arma::Mat<double> read_idx_images<double>(const std::string&);
extern template Dataset<float> read_idx<float>(const std::string&, const std::string&,
                                               std::size_t);
extern template Dataset<double> read_idx<double>(const std::string&, const std::string&,
                                                 std::size_t);
extern template Dataset<float> load_fashion_mnist<float>(const std::string&,
                                                         const std::string&);
extern template Dataset<double> load_fashion_mnist<double>(const std::string&,
                                                           const std::string&);
extern template Dataset<float> read_csv<float>(const std::string&, const CsvOptions&);
extern template Dataset<double> read_csv<double>(const std::string&, const CsvOptions&);
extern template void copy_batch<float>(const Dataset<float>&, const arma::uvec&, std::size_t,
                                       std::size_t, arma::Mat<float>&, arma::uvec&,
                                       arma::Mat<float>&);
extern template void copy_batch<double>(const Dataset<double>&, const arma::uvec&,
                                        std::size_t, std::size_t, arma::Mat<double>&,
                                        arma::uvec&, arma::Mat<double>&);
extern template std::pair<Dataset<float>, Dataset<float>> train_validation_split<float>(
    const Dataset<float>&, double, Rng&);
extern template std::pair<Dataset<double>, Dataset<double>> train_validation_split<double>(
    const Dataset<double>&, double, Rng&);
extern template arma::Mat<float> one_hot<float>(const arma::uvec&, std::size_t);
extern template arma::Mat<double> one_hot<double>(const arma::uvec&, std::size_t);

}  // namespace layercache
