// evaluate and predict: the inference path in batches, dealt out to worker threads.
#include "layercache/training.hpp"

#include <algorithm>
#include <exception>
#include <vector>

#include "layercache/distributed.hpp"
#include "common.hpp"

namespace layercache {
namespace {

using detail::check_data;
using detail::columns_view;
using detail::correct_predictions;
using detail::labels_view;
using detail::run_with_single_threaded_blas;

// Runs task(t) for every t in [0, tasks) at the same time on as many threads, the BLAS
// single-threaded meanwhile; task(0) alone on the calling thread when tasks is 1. Returns
// false when a task threw.
template <class F>
bool run_tasks(std::size_t tasks, F& task) {
  if (tasks <= 1) {
    task(0);
    return true;
  }
  detail::WorkerPool pool(tasks);
  return run_with_single_threaded_blas(pool, task);
}

// Number of batches of batch_size samples (the last may be smaller) out of n.
std::size_t batch_count(std::size_t n, std::size_t batch_size) {
  return (n + batch_size - 1) / batch_size;
}

// Sums of the loss (times each batch's size) and of the correct predictions over the samples
// [first, last) of `data`, in batches of batch_size dealt out to `threads` threads.
template <class T>
void evaluate_sums(const Layer& network, const Tree<T>& params, const Tree<T>& state,
                   const Loss& loss, const Dataset<T>& data, std::size_t first,
                   std::size_t last, std::size_t batch_size, std::size_t threads,
                   double& loss_sum, std::size_t& correct) {
  const bool labels = !data.labels.is_empty();
  const std::size_t batches = batch_count(last - first, batch_size);
  // Thread t takes batches t, t + tasks, ...; each keeps its own output and sums.
  std::size_t tasks = std::min(threads, batches);
  std::vector<arma::Mat<T>> outputs(tasks);
  std::vector<double> loss_sums(tasks, 0.0);
  std::vector<std::size_t> corrects(tasks, 0);
  auto task = [&](std::size_t t) {
    for (std::size_t b = t; b < batches; b += tasks) {
      const std::size_t begin = first + b * batch_size, end = std::min(begin + batch_size, last);
      arma::Mat<T>& y = outputs[t];  // reused: shape and labels were checked above
      network.infer_into(params, state, columns_view(data.x, begin, end), data.shape, y);
      if (labels) {
        const arma::uvec batch_labels = labels_view(data.labels, begin, end);
        loss_sums[t] += loss.value(y, batch_labels) * double(end - begin);
        corrects[t] += correct_predictions(y, batch_labels);
      } else {
        const arma::Mat<T> targets =
            columns_view(data.targets_are_inputs ? data.x : data.targets, begin, end);
        loss_sums[t] += loss.value(y, targets) * double(end - begin);
      }
    }
  };
  if (!run_tasks(tasks, task)) {
    // Once more on this thread, batch after batch: throws the error a one-thread pass gives.
    tasks = 1;
    loss_sums.assign(1, 0.0);
    corrects.assign(1, 0);
    task(0);
  }
  loss_sum = 0;
  correct = 0;
  for (std::size_t t = 0; t < tasks; ++t) {
    loss_sum += loss_sums[t];
    correct += corrects[t];
  }
}

}  // namespace

template <class T>
Metrics evaluate(const Layer& network, const Tree<T>& params, const Tree<T>& state,
                 const Loss& loss, const Dataset<T>& data, std::size_t batch_size,
                 std::size_t threads, Collective* group) {
  if (batch_size == 0) throw ConfigError("evaluate needs a positive batch_size");
  if (threads == 0) throw ConfigError("evaluate needs threads >= 1");
  Metrics metrics;
  double sums[3] = {0, 0, double(data.size())};  // loss sum, correct, samples
  std::exception_ptr outcome;
  try {
    if (data.size() != 0) {
      check_data(network, data, loss, "data");  // names a bad label by its index in the data set
      const BatchRange share = rank_share(data.size(), group);
      std::size_t correct = 0;
      if (share.size() != 0)
        evaluate_sums(network, params, state, loss, data, share.begin, share.end, batch_size,
                      threads, sums[0], correct);
      sums[1] = double(correct);
    }
  } catch (...) {
    if (!group) throw;
    outcome = std::current_exception();
  }
  if (group) {
    sums[2] = 0;
    if (group->rank() == 0) sums[2] = double(data.size());  // every rank holds the data set
    check_all(*group, outcome, sums, 3);
  }
  metrics.samples = static_cast<std::size_t>(sums[2]);
  if (metrics.samples == 0) return metrics;
  metrics.loss = sums[0] / sums[2];
  if (!data.labels.is_empty()) metrics.accuracy = sums[1] / sums[2];
  return metrics;
}

template <class T>
arma::Mat<T> predict(const Layer& network, const Tree<T>& params, const Tree<T>& state,
                     const arma::Mat<T>& x, const Shape& x_shape, std::size_t batch_size,
                     std::size_t threads) {
  if (batch_size == 0) throw ConfigError("predict needs a positive batch_size");
  if (threads == 0) throw ConfigError("predict needs threads >= 1");
  const Shape shape = x_shape.rank() ? x_shape : Shape{x.n_rows};
  check_rows(x.n_rows, shape);
  const Shape out_shape = network.output_shape(shape);
  arma::Mat<T> out(out_shape.size(), x.n_cols);
  const std::size_t batches = batch_count(x.n_cols, batch_size);
  std::size_t tasks = std::max<std::size_t>(1, std::min(threads, batches));
  std::vector<arma::Mat<T>> outputs(tasks);
  auto task = [&](std::size_t t) {
    for (std::size_t b = t; b < batches; b += tasks) {
      const std::size_t begin = b * batch_size, end = std::min<std::size_t>(begin + batch_size, x.n_cols);
      arma::Mat<T>& y = outputs[t];
      network.infer_into(params, state, columns_view(x, begin, end), shape, y);
      out.cols(begin, end - 1) = y;
    }
  };
  if (!run_tasks(tasks, task)) {
    tasks = 1;  // once more on this thread: throws the error a one-thread pass gives
    task(0);
  }
  return out;
}

#define LAYERCACHE_INSTANTIATE_EVALUATE(T)                                                     \
  template Metrics evaluate(const Layer&, const Tree<T>&, const Tree<T>&, const Loss&,         \
                            const Dataset<T>&, std::size_t, std::size_t, Collective*);         \
  template arma::Mat<T> predict(const Layer&, const Tree<T>&, const Tree<T>&,                  \
                                const arma::Mat<T>&, const Shape&, std::size_t, std::size_t);

LAYERCACHE_INSTANTIATE_EVALUATE(float)
LAYERCACHE_INSTANTIATE_EVALUATE(double)

}  // namespace layercache
