// Library-internal (not installed): what the training step, fit and evaluate/predict share
// — the data check before a run, batch views, counting correct predictions, and running
// tasks on worker threads with the BLAS single-threaded.
#pragma once

#include <cmath>
#include <cstddef>
#include <string>

#include "layercache/training.hpp"
#include "../worker_pool.hpp"

namespace layercache::detail {

// Correct predictions in a batch: arg-max against the label for class scores, the sign of
// the logit for a binary classifier's single output (binary cross-entropy with logits).
template <class T>
std::size_t correct_predictions(const arma::Mat<T>& y, const arma::uvec& labels) {
  if (y.n_rows == 1)
    return static_cast<std::size_t>(std::llround(binary_accuracy(y, labels) * double(y.n_cols)));
  return count_correct(y, labels);
}

// Checks a data set against the network before training: sample shape, and labels within
// the network's outputs (naming the first offending sample).
template <class T>
void check_data(const Layer& network, const Dataset<T>& data, const Loss& loss, const char* which) {
  try {
    const Shape out = network.output_shape(data.shape);
    if (data.x.n_rows != data.shape.size())
      throw ShapeError("the samples have " + std::to_string(data.x.n_rows) +
                       " rows but the data's shape " + data.shape.str() + " needs " +
                       std::to_string(data.shape.size()));
    if (!data.labels.is_empty()) {
      if (!loss.accepts_labels())
        throw ConfigError("the data has labels but the loss '" + loss.name() +
                          "' takes target matrices");
      if (data.labels.n_elem != data.x.n_cols)
        throw ShapeError("expected one label per sample (" + std::to_string(data.x.n_cols) +
                         "), got " + std::to_string(data.labels.n_elem));
      const std::size_t classes = loss.name() == "binary_cross_entropy_with_logits" ? 2 : out.size();
      for (arma::uword i = 0; i < data.labels.n_elem; ++i)
        if (data.labels[i] >= classes)
          throw DataError("sample " + std::to_string(i) + " has label " +
                          std::to_string(data.labels[i]) + ", out of range for the network's " +
                          std::to_string(classes) + " classes (0.." + std::to_string(classes - 1) + ")");
    } else if (data.targets_are_inputs) {
      if (out.size() != data.x.n_rows)
        throw ShapeError("the data's targets are its inputs, " + data.shape.str() +
                         ", but the network's output is " + out.str());
    } else if (data.targets.is_empty()) {
      throw ConfigError("the data has neither labels nor targets");
    }
  } catch (Error& e) {
    e.prepend_path(which);
    throw;
  }
}

// A non-owning view of columns [begin, end) of x.
template <class T>
const arma::Mat<T> columns_view(const arma::Mat<T>& x, std::size_t begin, std::size_t end) {
  return arma::Mat<T>(const_cast<T*>(x.colptr(begin)), x.n_rows, end - begin, false, true);
}

// A non-owning view of entries [begin, end) of the labels.
inline const arma::uvec labels_view(const arma::uvec& labels, std::size_t begin,
                                    std::size_t end) {
  return arma::uvec(const_cast<arma::uword*>(labels.memptr()) + begin, end - begin, false, true);
}

// Whether the metric `monitor` improves by rising (the accuracies) rather than falling (the
// losses); throws ConfigError, naming `who` ("early stopping"), for another name.
bool monitor_maximizes(const std::string& monitor, const std::string& who);

// Throws ConfigError, naming `who`, when the run `start` describes does not measure
// `monitor`: validation data for val_*, labels for the accuracies (defined in history.cpp).
template <class T>
void check_monitor_measured(const std::string& monitor, const FitStart<T>& start,
                            const std::string& who);

// Sets the BLAS to one thread for the lifetime of the guard.
class SingleThreadedBlas {
 public:
  SingleThreadedBlas() : saved_(blas_threads()) {
    if (saved_ != 1) set_blas_threads(1);
  }
  ~SingleThreadedBlas() {
    if (saved_ != 1) set_blas_threads(saved_);
  }
  SingleThreadedBlas(const SingleThreadedBlas&) = delete;
  SingleThreadedBlas& operator=(const SingleThreadedBlas&) = delete;

 private:
  int saved_;
};

// Runs task(t) for every t in [0, pool.size()) on the pool's threads, the BLAS
// single-threaded meanwhile. Returns false when a task threw.
template <class F>
bool run_with_single_threaded_blas(detail::WorkerPool& pool, F& task) {
  SingleThreadedBlas single;
  pool.run(task);
  return !pool.first_error();
}

}  // namespace layercache::detail
