// GRU: one step of the cell forward and backward, side by side; the time loop is shared
// (recurrent.hpp).
#include "layercache/layers/gru.hpp"

#include "../vector_kernel.hpp"
#include "gate_math.hpp"
#include "recurrent.hpp"

namespace layercache {
struct GRU::Cell {
  static constexpr std::size_t gates = 3;
  static constexpr bool has_cell = false;
  static constexpr bool separate_hidden = true;

  // g = (p_r, p_z, p_n) → (r, z, n),  e = U h_prev + b_h;  h = (1 − z) n + z h_prev.
  // The blocks of g, e, h_prev and h never overlap; the loop runs in vector lanes.
  template <class T>
  LAYERCACHE_WIDE_VECTOR_KERNEL static void forward(std::size_t H, T* __restrict g,
                                                    const T* __restrict e,
                                                    const T* __restrict h_prev, const T*,
                                                    T* __restrict h, T*) {
    T *r = g, *z = g + H, *n = g + 2 * H;
    for (std::size_t k = 0; k < H; ++k) {
      const T r_k = detail::sigmoid_gate(r[k] + e[k]), z_k = detail::sigmoid_gate(z[k] + e[H + k]);
      const T n_k = detail::tanh_gate(n[k] + r_k * e[2 * H + k]);
      r[k] = r_k;
      z[k] = z_k;
      n[k] = n_k;
      h[k] = (T(1) - z_k) * n_k + z_k * h_prev[k];
    }
  }

  // See the header's formulas; dh leaves as δh ⊙ z, the part of δh_{t−1} that skips U.
  template <class T>
  static void backward(std::size_t H, const T* g, const T* e, const T* h_prev, const T*,
                       const T*, T* dh, T*, T* dp, T* de) {
    const T *r = g, *z = g + H, *n = g + 2 * H;
    for (std::size_t k = 0; k < H; ++k) {
      const T dn = dh[k] * (T(1) - z[k]) * (T(1) - n[k] * n[k]);
      const T dr = dn * e[2 * H + k] * r[k] * (T(1) - r[k]);
      const T dz = dh[k] * (h_prev[k] - n[k]) * z[k] * (T(1) - z[k]);
      dp[k] = de[k] = dr;
      dp[H + k] = de[H + k] = dz;
      dp[2 * H + k] = dn;
      de[2 * H + k] = dn * r[k];
      dh[k] *= z[k];
    }
  }
};

template class RecurrentLayer<GRU>;
template class LayerImpl<GRU, RecurrentCache>;

}  // namespace layercache
