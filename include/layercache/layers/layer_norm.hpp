// LayerNorm: every sample normalized by its own mean and variance (docs/layers.md,
// "LayerNorm").
#pragma once

#include <cstddef>

#include "layercache/layer_impl.hpp"

namespace layercache {

/// Options of LayerNorm.
struct LayerNormOptions {
  /// Added to the variance before its square root; > 0.
  double eps = 1e-5;
};

/// What LayerNorm keeps for backward.
template <class T>
struct LayerNormCache : Cache {
  arma::Mat<T> normalized;  ///< x̂ = (x − μ)·inv_std per sample (n × batch)
  arma::Row<T> inv_std;     ///< 1 / √(σ² + eps) per sample (1 × batch)

  /// The buffers backward reads.
  void for_each_buffer(const BufferVisitor& f) const override {
    visit_buffer<T>(normalized, f);
    visit_buffer<T>(inv_std, f);
  }
};

/// Layer normalization: each sample (a feature vector, or a whole image c × h × w) normalized
/// over all its n values, then scaled and shifted element-wise. Params: scale γ and shift β
/// (n × 1), starting at one and zero. No state; training and inference are the same.
///   forward:  μ = Σx / n,  σ² = Σ(x − μ)² / n,  x̂ = (x − μ) / √(σ² + eps),  y = γ ⊙ x̂ + β
///   backward: dβ = Σ_samples dy,  dγ = Σ_samples dy ⊙ x̂,  with g = γ ⊙ dy per sample
///             dx = (g − mean(g) − x̂ · mean(g ⊙ x̂)) / √(σ² + eps)
class LayerNorm : public LayerImpl<LayerNorm, LayerNormCache> {
 public:
  /// The layer's kind.
  static constexpr const char* kind_name = "layer_norm";
  /// Layer normalization; throws ConfigError for an eps that is not positive.
  explicit LayerNorm(LayerNormOptions options = {});

  Shape output_shape(const Shape& input) const override;
  std::vector<TensorSpec> param_specs(const Shape& input) const override;

  /// The options.
  const LayerNormOptions& options() const noexcept { return options_; }

  /// y = γ ⊙ x̂ + β (see LayerImpl).
  template <class T>
  void forward_t(const Tensors<T>& params, const ConstBuffer<T>& x, arma::Mat<T>& y,
                 LayerNormCache<T>& cache, const LayerCall<T>& call) const;
  /// dγ, dβ and dx (see the class comment and LayerImpl).
  template <class T>
  void backward_t(const Tensors<T>& params, const LayerNormCache<T>& cache,
                  const arma::Mat<T>& dy, Gradients<T>& grads) const;
  /// y = γ ⊙ x̂ + β without a cache (see LayerImpl).
  template <class T>
  void infer_t(const Tensors<T>& params, const arma::Mat<T>& x, arma::Mat<T>& y,
               const LayerCall<T>& call) const;

 private:
  LayerNormOptions options_;
};

extern template class LayerImpl<LayerNorm, LayerNormCache>;

}  // namespace layercache
