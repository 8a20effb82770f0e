// Dropout and Dropout2D: inverted dropout of values, or of whole image channels, with masks
// drawn from the caller's Context::rng (docs/layers.md, "Dropout").
#pragma once

#include <cstddef>

#include "layercache/layer_impl.hpp"

namespace layercache {

/// Options of Dropout and Dropout2D.
struct DropoutOptions {
  /// Probability that a value (Dropout) or a channel (Dropout2D) is dropped; in [0, 1).
  double rate = 0.5;
};

/// What Dropout keeps for backward: the mask it drew.
template <class T>
struct DropoutCache : Cache {
  /// 0 for a dropped value, 1 / (1 − rate) for a kept one (n × batch); empty when nothing
  /// was dropped (infer mode, or rate 0), then dx = dy.
  arma::Mat<T> mask;

  /// The mask.
  void for_each_buffer(const BufferVisitor& f) const override { visit_buffer<T>(mask, f); }
};

/// Inverted dropout. In training, each value is kept with probability 1 − rate and scaled by
/// 1 / (1 − rate), so the expected output is the input; in infer mode (and infer) the layer is
/// the identity. One uniform draw from Context::rng per value, in column-major order: the
/// same stream gives the same mask. No params, no state.
///   forward:  y = x ⊙ mask,  mask = [u ≥ rate] / (1 − rate)
///   backward: dx = dy ⊙ mask
class Dropout : public LayerImpl<Dropout, DropoutCache> {
 public:
  /// The layer's kind.
  static constexpr const char* kind_name = "dropout";
  /// Dropout; throws ConfigError for a rate outside [0, 1).
  explicit Dropout(DropoutOptions options = {});

  Shape output_shape(const Shape& input) const override { return input; }

  /// The rate.
  double rate() const noexcept { return options_.rate; }

  /// y = x ⊙ mask in training, y = x otherwise (see LayerImpl).
  template <class T>
  void forward_t(const Tensors<T>& params, const ConstBuffer<T>& x, arma::Mat<T>& y,
                 DropoutCache<T>& cache, const LayerCall<T>& call) const;
  /// dx = dy ⊙ mask (see LayerImpl).
  template <class T>
  void backward_t(const Tensors<T>& params, const DropoutCache<T>& cache,
                  const arma::Mat<T>& dy, Gradients<T>& grads) const;
  /// y = x (see LayerImpl).
  template <class T>
  void infer_t(const Tensors<T>& params, const arma::Mat<T>& x, arma::Mat<T>& y,
               const LayerCall<T>& call) const;

 private:
  DropoutOptions options_;
};

/// Channel dropout of images (c, h, w): in training each channel of each sample is kept
/// whole with probability 1 − rate and scaled by 1 / (1 − rate), or zeroed whole (neighbouring
/// pixels are correlated, so dropping single pixels would hardly regularize a convolution).
/// One uniform draw per channel and sample, in column-major order of the (c × batch) mask;
/// the identity in infer mode. No params, no state.
///   forward:  y[ci, ·, ·] = x[ci, ·, ·] · mask[ci]     backward: dx[ci, ·, ·] = dy[ci, ·, ·] · mask[ci]
class Dropout2D : public LayerImpl<Dropout2D, DropoutCache> {
 public:
  /// The layer's kind.
  static constexpr const char* kind_name = "dropout2d";
  /// Channel dropout; throws ConfigError for a rate outside [0, 1).
  explicit Dropout2D(DropoutOptions options = {});

  Shape output_shape(const Shape& input) const override;

  /// The rate.
  double rate() const noexcept { return options_.rate; }

  /// y = each channel times its mask entry in training, y = x otherwise (see LayerImpl).
  template <class T>
  void forward_t(const Tensors<T>& params, const ConstBuffer<T>& x, arma::Mat<T>& y,
                 DropoutCache<T>& cache, const LayerCall<T>& call) const;
  /// dx = each channel of dy times its mask entry (see LayerImpl).
  template <class T>
  void backward_t(const Tensors<T>& params, const DropoutCache<T>& cache,
                  const arma::Mat<T>& dy, Gradients<T>& grads) const;
  /// y = x (see LayerImpl).
  template <class T>
  void infer_t(const Tensors<T>& params, const arma::Mat<T>& x, arma::Mat<T>& y,
               const LayerCall<T>& call) const;

 private:
  DropoutOptions options_;
};

extern template class LayerImpl<Dropout, DropoutCache>;
extern template class LayerImpl<Dropout2D, DropoutCache>;

}  // namespace layercache
