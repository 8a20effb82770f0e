// LSTM: one step of the cell forward and backward, side by side; the time loop is shared
// (recurrent.hpp).
#include "layercache/layers/lstm.hpp"

#include <cmath>

#include "recurrent.hpp"

namespace layercache {
namespace {

template <class T>
T sigmoid(T a) {
  return T(1) / (T(1) + std::exp(-a));
}

}  // namespace

struct LSTM::Cell {
  static constexpr std::size_t gates = 4;
  static constexpr bool has_cell = true;
  static constexpr bool separate_hidden = false;

  // g = (a_i, a_f, a_g, a_o) → (i, f, g, o);  c = f c_prev + i g,  h = o tanh(c).
  template <class T>
  static void forward(std::size_t H, T* g, const T*, const T*, const T* c_prev, T* h, T* c) {
    T *i = g, *f = g + H, *gg = g + 2 * H, *o = g + 3 * H;
    for (std::size_t r = 0; r < H; ++r) {
      i[r] = sigmoid(i[r]);
      f[r] = sigmoid(f[r]);
      gg[r] = std::tanh(gg[r]);
      o[r] = sigmoid(o[r]);
      c[r] = f[r] * c_prev[r] + i[r] * gg[r];
      h[r] = o[r] * std::tanh(c[r]);
    }
  }

  // See the header's formulas; dh leaves as 0 (all of δh_{t−1} passes through U).
  template <class T>
  static void backward(std::size_t H, const T* g, const T*, const T*, const T* c_prev,
                       const T* c, T* dh, T* dc, T* dp, T*) {
    const T *i = g, *f = g + H, *gg = g + 2 * H, *o = g + 3 * H;
    for (std::size_t r = 0; r < H; ++r) {
      const T tc = std::tanh(c[r]);
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
