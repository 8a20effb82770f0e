// SimpleRNN: the Elman recurrent layer with tanh over a sequence (docs/sequences.md).
#pragma once

#include "layercache/layers/recurrent.hpp"

namespace layercache {

/// Elman recurrent layer. Params: weight_input W (H × n_in), weight_hidden U (H × H), bias
/// b (H). Per step:
///   h_t = tanh(W x_t + U h_{t−1} + b)
/// backward (δh = dy_t + Uᵀ δa_{t+1}):
///   δa = δh ⊙ (1 − h_t²);  dW = Σ δa xᵀ, dU = Σ δa h_{t−1}ᵀ, db = Σ δa, dx_t = Wᵀ δa.
/// The state is h: with initial_state the input sample is [h₀; x], with return_state the
/// output sample is [y; h_T].
class SimpleRNN : public RecurrentLayer<SimpleRNN> {
 public:
  /// The layer's kind.
  static constexpr const char* kind_name = "simple_rnn";
  /// The math of one step (src/layers/simple_rnn.cpp).
  struct Cell;
  /// A layer as described by `options` (n_in and n_hidden positive, else ConfigError).
  explicit SimpleRNN(RecurrentOptions options) : RecurrentLayer(options) {}
};

extern template class RecurrentLayer<SimpleRNN>;
extern template class LayerImpl<SimpleRNN, RecurrentCache>;

}  // namespace layercache
