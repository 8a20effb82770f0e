// The bucketed sum of a step's gradients across processes (gradient_exchange.hpp).
#include "gradient_exchange.hpp"

#include <algorithm>
#include <string>
#include <type_traits>

#include "../vector_kernel.hpp"

namespace layercache::detail {
namespace {

// to[i] = from[i] · scale for n values; returns whether all of them are finite (v − v is 0
// for a finite v, NaN otherwise: the check rides on a loop bound by memory, as in add_into).
template <class T>
LAYERCACHE_VECTOR_KERNEL bool scaled_copy(T* __restrict to, const T* __restrict from, T scale,
                                          std::size_t n) noexcept {
  T partial[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  const std::size_t blocked = n - n % 8;
  for (std::size_t j = 0; j < blocked; j += 8)
    for (std::size_t k = 0; k < 8; ++k) {
      const T v = from[j + k] * scale;
      to[j + k] = v;
      partial[k] += v - v;
    }
  T total = 0;
  for (std::size_t j = blocked; j < n; ++j) {
    const T v = from[j] * scale;
    to[j] = v;
    total += v - v;
  }
  for (T v : partial) total += v;
  return total == T(0);
}

}  // namespace

template <class T>
void GradientExchange<T>::begin(Collective& group, std::size_t total, std::size_t bucket,
                                T scale) {
  group_ = &group;
  flat_.resize(total);  // allocates only when the stream grows
  leaves_.clear();
  total_ = total;
  bucket_ = std::max<std::size_t>(bucket, 1);
  filled_ = started_ = 0;
  scale_ = scale;
  overflow_ = false;
  non_finite_ = nullptr;
}

template <class T>
void GradientExchange<T>::grads_final(Tree<float>& grads) {
  if constexpr (std::is_same_v<T, float>) add(grads);
}

template <class T>
void GradientExchange<T>::grads_final(Tree<double>& grads) {
  if constexpr (std::is_same_v<T, double>) add(grads);
}

template <class T>
void GradientExchange<T>::add(Tree<T>& tree) {
  if (tree.is_leaf()) return add_leaf(tree.value());
  for (std::size_t i = 0; i < tree.size(); ++i) add(tree.child(i));
}

template <class T>
void GradientExchange<T>::add_leaf(arma::Mat<T>& leaf) {
  const std::size_t n = leaf.n_elem;
  if (n == 0) return;
  T* data = leaf.memptr();
  for (const auto& l : leaves_)
    if (l.first == data) return;  // announced already (a few dozen leaves: a scan is cheap)
  if (n > total_ - filled_) {
    overflow_ = true;
    return;
  }
  if (!scaled_copy(flat_.data() + filled_, data, scale_, n) && !non_finite_) non_finite_ = data;
  leaves_.emplace_back(data, n);
  filled_ += n;
  start_full_buckets();
}

template <class T>
void GradientExchange<T>::start_full_buckets() {
  while (filled_ - started_ >= bucket_) {
    group_->start_sum(flat_.data() + started_, bucket_);
    started_ += bucket_;
  }
}

template <class T>
void GradientExchange<T>::fill() {
  std::fill(flat_.begin() + std::ptrdiff_t(filled_), flat_.end(), T(0));
  filled_ = total_;
  start_full_buckets();
}

template <class T>
void GradientExchange<T>::finish(std::exception_ptr outcome, double* sums, std::size_t n) {
  if (!outcome && (overflow_ || filled_ != total_))
    outcome = std::make_exception_ptr(ConfigError(
        "this rank's gradients and state hold " + std::string(overflow_ ? "more" : "fewer") +
        " values than its params and state (" + std::to_string(total_) +
        "): a layer's backward returned gradients of another size"));
  if (filled_ != total_) fill();
  if (started_ != total_) group_->start_sum(flat_.data() + started_, total_ - started_);
  started_ = total_;
  group_->wait();
  check_all(*group_, outcome, sums, n, scratch_);
}

template <class T>
void GradientExchange<T>::unpack(T scale) noexcept {
  const T* from = flat_.data();
  for (const auto& [to, n] : leaves_) {
    scaled_copy(to, from, scale, n);
    from += n;
  }
}

template class GradientExchange<float>;
template class GradientExchange<double>;

template <class T>
void GradientExchangeDeleter<T>::operator()(GradientExchange<T>* exchange) const noexcept {
  delete exchange;
}

template struct GradientExchangeDeleter<float>;
template struct GradientExchangeDeleter<double>;

}  // namespace layercache::detail
