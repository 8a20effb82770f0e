// SimpleRNN: one step of the cell forward and backward, side by side; the time loop is
// shared (recurrent.hpp).
#include "layercache/layers/simple_rnn.hpp"

#include "../vector_kernel.hpp"
#include "gate_math.hpp"
#include "recurrent.hpp"

namespace layercache {
struct SimpleRNN::Cell {
  static constexpr std::size_t gates = 1;
  static constexpr bool has_cell = false;
  static constexpr bool separate_hidden = false;

  // h = tanh(W x + U h_prev + b), kept in g too.
  template <class T>
  LAYERCACHE_WIDE_VECTOR_KERNEL static void forward(std::size_t H, T* __restrict g, const T*,
                                                    const T*, const T*, T* __restrict h, T*) {
    for (std::size_t k = 0; k < H; ++k) h[k] = g[k] = detail::tanh_gate(g[k]);
  }

  // δa = δh (1 − h²); dh leaves as 0 (all of δh_{t−1} passes through U).
  template <class T>
  static void backward(std::size_t H, const T* g, const T*, const T*, const T*, const T*, T* dh,
                       T*, T* dp, T*) {
    for (std::size_t k = 0; k < H; ++k) {
      dp[k] = dh[k] * (T(1) - g[k] * g[k]);
      dh[k] = T(0);
    }
  }
};

template class RecurrentLayer<SimpleRNN>;
template class LayerImpl<SimpleRNN, RecurrentCache>;

}  // namespace layercache
