// LSTM: one step of the cell forward and backward, side by side; the time loop is shared
// (recurrent.hpp).
#include "layercache/layers/lstm.hpp"

#include "../vector_kernel.hpp"
#include "gate_math.hpp"
#include "recurrent.hpp"

namespace layercache {

struct LSTM::Cell {
  static constexpr std::size_t gates = 4;
  static constexpr bool has_cell = true;
  static constexpr bool separate_hidden = false;

  // g = (a_i, a_f, a_g, a_o) → (i, f, g, o);  c = f c_prev + i g,  h = o tanh(c).
  // The blocks of g, c_prev, h and c never overlap; the loop runs in vector lanes.
  template <class T>
  LAYERCACHE_WIDE_VECTOR_KERNEL static void forward(std::size_t H, T* __restrict g, const T*,
                                                    const T*, const T* __restrict c_prev,
                                                    T* __restrict h, T* __restrict c) {
    T *i = g, *f = g + H, *gg = g + 2 * H, *o = g + 3 * H;
    for (std::size_t r = 0; r < H; ++r) {
      const T i_r = detail::sigmoid_gate(i[r]), f_r = detail::sigmoid_gate(f[r]);
      const T g_r = detail::tanh_gate(gg[r]), o_r = detail::sigmoid_gate(o[r]);
      const T c_r = f_r * c_prev[r] + i_r * g_r;
      i[r] = i_r;
      f[r] = f_r;
      gg[r] = g_r;
      o[r] = o_r;
      c[r] = c_r;
      h[r] = o_r * detail::tanh_gate(c_r);
    }
  }

  // See the header's formulas; dh leaves as 0 (all of δh_{t−1} passes through U).
  template <class T>
  LAYERCACHE_WIDE_VECTOR_KERNEL static void backward(std::size_t H, const T* __restrict g,
                                                     const T*, const T*,
                                                     const T* __restrict c_prev,
                                                     const T* __restrict c, T* __restrict dh,
                                                     T* __restrict dc, T* __restrict dp, T*) {
    const T *i = g, *f = g + H, *gg = g + 2 * H, *o = g + 3 * H;
    for (std::size_t r = 0; r < H; ++r) {
      const T tc = detail::tanh_gate(c[r]);
      const T dcell = dc[r] + dh[r] * o[r] * (T(1) - tc * tc);
      dp[r] = dcell * gg[r] * i[r] * (T(1) - i[r]);
      dp[H + r] = dcell * c_prev[r] * f[r] * (T(1) - f[r]);
      dp[2 * H + r] = dcell * i[r] * (T(1) - gg[r] * gg[r]);
      dp[3 * H + r] = dh[r] * tc * o[r] * (T(1) - o[r]);
      dc[r] = dcell * f[r];
      dh[r] = T(0);
    }
  }
};

template class RecurrentLayer<LSTM>;
template class LayerImpl<LSTM, RecurrentCache>;

}  // namespace layercache
