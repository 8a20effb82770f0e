// LSTM: a long short-term memory layer over a sequence (docs/sequences.md).
#pragma once

#include "layercache/layers/recurrent.hpp"

namespace layercache {

/// Long short-term memory (Hochreiter & Schmidhuber), with PyTorch's gate order i, f, g, o.
/// Params: weight_input W (4H × n_in), weight_hidden U (4H × H), bias b (4H). Per step, with
/// a = W x_t + U h_{t−1} + b split in four blocks of H rows:
///   i = σ(a_i), f = σ(a_f), g = tanh(a_g), o = σ(a_o)
///   c_t = f ⊙ c_{t−1} + i ⊙ g,   h_t = o ⊙ tanh(c_t)
/// backward (δc carried from step t + 1, δh = dy_t + Uᵀ δa_{t+1}):
///   δc = δc_{t+1} + δh ⊙ o ⊙ (1 − tanh² c_t),  δa_o = δh ⊙ tanh c_t ⊙ o (1 − o),
///   δa_i = δc ⊙ g ⊙ i (1 − i),  δa_f = δc ⊙ c_{t−1} ⊙ f (1 − f),  δa_g = δc ⊙ i ⊙ (1 − g²),
///   δc_{t−1} = δc ⊙ f;  dW = Σ δa xᵀ, dU = Σ δa h_{t−1}ᵀ, db = Σ δa, dx_t = Wᵀ δa.
/// The input projection of every step is one GEMM, the hidden projection of the four gates
/// one GEMM per step; a steady-state step allocates nothing. The state is (h, c): with
/// RecurrentOptions::initial_state the input sample is [h₀; c₀; x], with return_state the
/// output sample is [y; h_T; c_T].
class LSTM : public RecurrentLayer<LSTM> {
 public:
  /// The layer's kind.
  static constexpr const char* kind_name = "lstm";
  /// The math of one step (src/layers/lstm.cpp).
  struct Cell;
  /// A layer as described by `options` (n_in and n_hidden positive, else ConfigError).
  explicit LSTM(RecurrentOptions options) : RecurrentLayer(options) {}
};

extern template class RecurrentLayer<LSTM>;
extern template class LayerImpl<LSTM, RecurrentCache>;

}  // namespace layercache
