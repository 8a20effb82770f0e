// GRU: a gated recurrent unit layer over a sequence (docs/sequences.md).
#pragma once

#include "layercache/layers/recurrent.hpp"

namespace layercache {

/// Gated recurrent unit (Cho et al.), PyTorch's formulation and gate order r, z, n.
/// Params: weight_input W (3H × n_in), weight_hidden U (3H × H), bias b (3H) and
/// bias_hidden b_h (3H). Per step, with p = W x_t + b and e = U h_{t−1} + b_h in blocks of H:
///   r = σ(p_r + e_r), z = σ(p_z + e_z), n = tanh(p_n + r ⊙ e_n)
///   h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}
/// backward (δh = dy_t + the gradient from step t + 1):
///   δp_n = δh ⊙ (1 − z) ⊙ (1 − n²),  δp_r = δp_n ⊙ e_n ⊙ r (1 − r),
///   δp_z = δh ⊙ (h_{t−1} − n) ⊙ z (1 − z),  δe = (δp_r, δp_z, δp_n ⊙ r),
///   δh_{t−1} = δh ⊙ z + Uᵀ δe;  dW = Σ δp xᵀ, dU = Σ δe h_{t−1}ᵀ, db = Σ δp, db_h = Σ δe.
/// The state is h: with initial_state the input sample is [h₀; x], with return_state the
/// output sample is [y; h_T].
class GRU : public RecurrentLayer<GRU> {
 public:
  /// The layer's kind.
  static constexpr const char* kind_name = "gru";
  /// The math of one step (src/layers/gru.cpp).
  struct Cell;
  /// A layer as described by `options` (n_in and n_hidden positive, else ConfigError).
  explicit GRU(RecurrentOptions options) : RecurrentLayer(options) {}
};

extern template class RecurrentLayer<GRU>;
extern template class LayerImpl<GRU, RecurrentCache>;

}  // namespace layercache
