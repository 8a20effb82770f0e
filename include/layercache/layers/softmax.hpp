// Softmax and LogSoftmax over each column (each sample), over all of its rows, computed
// with the column maximum subtracted so that no exponential overflows. Formulas:
// docs/layers.md. For classification losses prefer the fused softmax cross-entropy loss,
// which takes the logits directly.
#pragma once

#include <cstddef>
#include <functional>

#include "layercache/layers/activation_base.hpp"

namespace layercache {

/// What Softmax keeps for backward: its output, the probabilities.
template <class T>
struct SoftmaxCache : Cache {
  ConstBuffer<T> y;  ///< output (n × batch), each column sums to 1

  const char* kind() const noexcept override { return "softmax"; }
  void for_each_buffer(const std::function<void(const void*, std::size_t)>& f) const override {
    visit_buffer(y, f);
  }
};

/// Softmax of each column over all its rows (the per-sample shape is flattened).
///   forward:  yᵢ = exp(xᵢ − m) / Σⱼ exp(xⱼ − m),  m = maxⱼ xⱼ
///   backward: dxᵢ = yᵢ·(dyᵢ − Σⱼ dyⱼ·yⱼ)
class Softmax : public ActivationLayer<Softmax> {
 public:
  std::string kind() const override { return "softmax"; }
};

/// What LogSoftmax keeps for backward: its output, the log-probabilities.
template <class T>
struct LogSoftmaxCache : Cache {
  ConstBuffer<T> y;  ///< output (n × batch), log-probabilities of each column

  const char* kind() const noexcept override { return "log_softmax"; }
  void for_each_buffer(const std::function<void(const void*, std::size_t)>& f) const override {
    visit_buffer(y, f);
  }
};

/// Logarithm of the softmax of each column, computed stably (never log of a rounded 0).
///   forward:  yᵢ = xᵢ − m − log Σⱼ exp(xⱼ − m),  m = maxⱼ xⱼ
///   backward: dxᵢ = dyᵢ − exp(yᵢ)·Σⱼ dyⱼ
class LogSoftmax : public ActivationLayer<LogSoftmax> {
 public:
  std::string kind() const override { return "log_softmax"; }
};

}  // namespace layercache
