// BatchNorm: normalization by the statistics of the batch in training, by running statistics
// kept in the state tree in inference (docs/layers.md, "BatchNorm").
#pragma once

#include <cstddef>

#include "layercache/layer_impl.hpp"

namespace layercache {

/// Options of BatchNorm.
struct BatchNormOptions {
  /// Weight of the batch in the running statistics:
  /// running ← (1 − momentum)·running + momentum·batch; in (0, 1].
  double momentum = 0.1;
  /// Added to the variance before its square root; > 0.
  double eps = 1e-5;
};

/// What BatchNorm keeps for backward.
template <class T>
struct BatchNormCache : Cache {
  arma::Mat<T> normalized;  ///< x̂ = (x − mean)·inv_std (rows × batch)
  arma::Col<T> inv_std;     ///< 1 / √(variance + eps) per channel (channels)
  /// Values per channel in the whole batch (all shards of a data-parallel step) when the
  /// statistics were the batch's; 0 when they were the running ones (infer mode).
  double count = 0;
  /// Scratch of forward, the per-channel sums (channels + 1); kept to reuse its memory.
  arma::Col<T> sums;

  /// The buffers backward reads.
  void for_each_buffer(const BufferVisitor& f) const override {
    visit_buffer(normalized, f);
    visit_buffer<T>(inv_std, f);
  }
};

/// Batch normalization of feature vectors (n), per feature, or of images (c, h, w), per
/// channel over the batch and every pixel. Params: scale γ and shift β (channels × 1), starting
/// at one and zero. State: running_mean and running_variance (channels × 1), starting at zero
/// and one. With m the values of a channel in the batch (batch·h·w):
///   training: μ = Σx / m,  σ² = Σ(x − μ)² / m,  x̂ = (x − μ) / √(σ² + eps),  y = γ x̂ + β;
///             new state: running_mean ← (1 − p) running_mean + p μ,
///                        running_variance ← (1 − p) running_variance + p σ² m / (m − 1)
///             (p the momentum; the unbiased variance, as PyTorch keeps it)
///   infer:    x̂ = (x − running_mean) / √(running_variance + eps),  y = γ x̂ + β
///   backward: dβ = Σ dy,  dγ = Σ dy x̂, and in training
///             dx = γ / (m √(σ² + eps)) · (m dy − dβ − x̂ dγ)   (the sums over the whole batch)
///             in infer mode dx = γ dy / √(running_variance + eps).
/// In a data-parallel step the sums run over the whole batch (LayerCall::sum_over_batch), so
/// the statistics are the whole batch's on every shard.
class BatchNorm : public LayerImpl<BatchNorm, BatchNormCache> {
 public:
  /// The layer's kind.
  static constexpr const char* kind_name = "batch_norm";
  /// Batch normalization of `channels` features (or image channels); throws ConfigError for
  /// zero channels, a momentum outside (0, 1] or an eps that is not positive.
  explicit BatchNorm(std::size_t channels, BatchNormOptions options = {});

  Shape output_shape(const Shape& input) const override;
  std::vector<TensorSpec> param_specs(const Shape& input) const override;
  std::vector<TensorSpec> state_specs(const Shape& input) const override;

  /// Features or channels normalized.
  std::size_t channels() const noexcept { return channels_; }
  /// The options.
  const BatchNormOptions& options() const noexcept { return options_; }

  /// y = γ x̂ + β, by the batch's statistics in training (see LayerImpl).
  template <class T>
  void forward_t(const Tensors<T>& params, const ConstBuffer<T>& x, arma::Mat<T>& y,
                 BatchNormCache<T>& cache, const LayerCall<T>& call) const;
  /// dγ, dβ and dx (see the class comment and LayerImpl).
  template <class T>
  void backward_t(const Tensors<T>& params, const BatchNormCache<T>& cache,
                  const arma::Mat<T>& dy, Gradients<T>& grads) const;
  /// y = γ (x − running_mean) / √(running_variance + eps) + β (see LayerImpl).
  template <class T>
  void infer_t(const Tensors<T>& params, const arma::Mat<T>& x, arma::Mat<T>& y,
               const LayerCall<T>& call) const;

 private:
  std::size_t channels_;
  BatchNormOptions options_;
};

extern template class LayerImpl<BatchNorm, BatchNormCache>;

}  // namespace layercache
