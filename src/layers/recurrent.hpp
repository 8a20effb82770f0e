// The time loop SimpleRNN, LSTM and GRU share (internal). A cell says how one step turns
// its gate pre-activations into the next state and back; this file does the rest: the
// input projection of all steps in one GEMM, one GEMM per step for the hidden projection
// of all gates, the lengths of a padded batch, the initial and final states, and the
// parameter gradients.
//
// A Cell provides
//   gates            gate blocks of H rows (1 for SimpleRNN, 4 for LSTM, 3 for GRU)
//   has_cell         an LSTM's cell state c besides h
//   separate_hidden  the hidden projection U h + b_hidden is kept apart from W x + b (GRU)
//   forward(H, g, e, h_prev, c_prev, h, c)
//       one column: g holds the pre-activations W x + b (plus U h_prev unless
//       separate_hidden, then e = U h_prev + b_hidden); writes the activations back into g,
//       and the new state into h (and c)
//   backward(H, g, e, h_prev, c_prev, c, dh, dc, dp, de)
//       one column: from dh (gradient of h) and dc (of c, carried from the next step),
//       writes dp = d(W x + b), de = d(U h_prev) (unless separate_hidden, de is dp), the
//       part of d h_prev that does not pass through U into dh, and d c_prev into dc.
#pragma once

#include <algorithm>
#include <string>

#include "layercache/layers/recurrent.hpp"
#include "layercache/sizes.hpp"

#include "../gemm.hpp"

namespace layercache::detail {

/// Rows of the state of a recurrent cell: h, and c for an LSTM.
template <class Cell>
constexpr std::size_t state_rows(std::size_t n_hidden) {
  return Cell::has_cell ? 2 * n_hidden : n_hidden;
}

/// Checks the options of a recurrent layer (ConfigError naming `kind`).
void check_recurrent_options(const RecurrentOptions& o, std::size_t gates, const char* kind);

/// The number of steps T of an input of `input` shape, or ShapeError.
std::size_t recurrent_steps(const RecurrentOptions& o, std::size_t state, const Shape& input);

/// The output shape of a recurrent layer for `input`.
Shape recurrent_output_shape(const RecurrentOptions& o, std::size_t state, const Shape& input);

/// The real steps of every sample of a batch of `batch` sequences of `steps` steps, from
/// the context's lengths (all `steps` when it has none), into `lengths` (resized without
/// allocating when its size is unchanged). ShapeError when the count is not the batch,
/// DataError for a length above `steps`.
void sequence_lengths(const Context& ctx, std::size_t batch, std::size_t steps,
                      std::vector<std::size_t>& lengths);

/// Param specs of a recurrent layer: weight_input (gates·H × n_in), weight_hidden
/// (gates·H × H), bias (gates·H) and, with `hidden_bias`, bias_hidden (gates·H).
std::vector<TensorSpec> recurrent_param_specs(const RecurrentOptions& o, std::size_t gates,
                                              bool hidden_bias);

template <class Cell, class T>
void recurrent_forward(const RecurrentOptions& o, const Tensors<T>& params,
                       const ConstBuffer<T>& x, arma::Mat<T>& y, RecurrentCache<T>& cache,
                       const LayerCall<T>& call) {
  const std::size_t H = o.n_hidden, F = o.n_in, G = Cell::gates * H;
  const std::size_t S = state_rows<Cell>(H), B = x->n_cols;
  const std::size_t steps = recurrent_steps(o, S, call.input()), TB = steps * B;
  sequence_lengths(call.context(), B, steps, cache.lengths);
  cache.x = x;
  const T* seq = x->memptr();  // (F × T·B)
  if (o.initial_state) {
    cache.initial = x->rows(0, S - 1);
    cache.steps = x->rows(S, x->n_rows - 1);
    seq = cache.steps.memptr();
  } else {
    cache.initial.zeros(S, B);
  }
  const arma::Mat<T>& w = params["weight_input"];
  const arma::Mat<T>& u = params["weight_hidden"];
  const T* bias = params["bias"].memptr();
  arma::Mat<T>& g = cache.gates;
  g.set_size(G, TB);
  cache.hidden.set_size(H, TB);
  if constexpr (Cell::has_cell) cache.cell.set_size(H, TB);
  if constexpr (Cell::separate_hidden) cache.projected.set_size(G, TB);
  // The input projection of every step of every sample: one GEMM, then the bias.
  gemm<T>('N', 'N', G, TB, F, w.memptr(), G, seq, F, g.memptr(), G);
  for (std::size_t j = 0; j < TB; ++j) {
    T* col = g.colptr(j);
    for (std::size_t r = 0; r < G; ++r) col[r] += bias[r];
  }
  const T* bias_hidden = Cell::separate_hidden ? params["bias_hidden"].memptr() : nullptr;
  for (std::size_t t = 0; t < steps; ++t) {
    // The state before step t of sample b: column b of the initial state, or step t − 1.
    const T* h_prev = t == 0 ? cache.initial.memptr() : cache.hidden.colptr(t - 1);
    const std::size_t ld_h = t == 0 ? S : H * steps;
    const T* c_prev = nullptr;
    if constexpr (Cell::has_cell) c_prev = t == 0 ? cache.initial.memptr() + H : cache.cell.colptr(t - 1);
    // One GEMM for every gate of every sample at step t (columns t, T + t, 2T + t, ...);
    // none before the first step from a zero state, where U h₀ is 0.
    const bool zero_state = t == 0 && !o.initial_state;
    T* e = nullptr;
    if constexpr (Cell::separate_hidden) {
      e = cache.projected.colptr(t);
      if (zero_state)
        for (std::size_t b = 0; b < B; ++b) std::fill_n(e + b * G * steps, G, T(0));
      else
        gemm<T>('N', 'N', G, B, H, u.memptr(), G, h_prev, ld_h, e, G * steps);
    } else if (!zero_state) {
      gemm<T>('N', 'N', G, B, H, u.memptr(), G, h_prev, ld_h, g.colptr(t), G * steps, T(1));
    }
    for (std::size_t b = 0; b < B; ++b) {
      const std::size_t j = b * steps + t;
      T* h = cache.hidden.colptr(j);
      T* c = Cell::has_cell ? cache.cell.colptr(j) : nullptr;
      if (t >= cache.lengths[b]) {  // padding: the state stops, the output is 0
        std::fill_n(h, H, T(0));
        if (c) std::fill_n(c, H, T(0));
        continue;
      }
      T* e_col = nullptr;
      if constexpr (Cell::separate_hidden) {
        e_col = e + b * G * steps;
        for (std::size_t r = 0; r < G; ++r) e_col[r] += bias_hidden[r];
      }
      Cell::forward(H, g.colptr(j), e_col, h_prev + b * ld_h,
                    c_prev ? c_prev + b * ld_h : nullptr, h, c);
    }
  }
  // The output: every step, or the last real one; then the final state.
  const std::size_t out_rows = o.return_sequences ? H * steps : H;
  for (std::size_t b = 0; b < B; ++b) {
    const std::size_t length = cache.lengths[b];
    T* out = y.colptr(b);
    const T* last_h = length ? cache.hidden.colptr(b * steps + length - 1) : cache.initial.colptr(b);
    if (o.return_sequences)
      std::copy_n(cache.hidden.colptr(b * steps), H * steps, out);
    else
      std::copy_n(last_h, H, out);
    if (o.return_state) {
      std::copy_n(last_h, H, out + out_rows);
      if constexpr (Cell::has_cell) {
        const T* last_c = length ? cache.cell.colptr(b * steps + length - 1) : cache.initial.colptr(b) + H;
        std::copy_n(last_c, H, out + out_rows + H);
      }
    }
  }
}

template <class Cell, class T>
void recurrent_backward(const RecurrentOptions& o, const Tensors<T>& params,
                        const RecurrentCache<T>& cache, const arma::Mat<T>& dy,
                        Gradients<T>& grads) {
  const std::size_t H = o.n_hidden, F = o.n_in, G = Cell::gates * H;
  const std::size_t S = state_rows<Cell>(H), B = dy.n_cols;
  const std::size_t steps = cache.hidden.n_cols / std::max<std::size_t>(B, 1), TB = steps * B;
  const std::size_t out_rows = o.return_sequences ? H * steps : H;
  const arma::Mat<T>& w = params["weight_input"];
  const arma::Mat<T>& u = params["weight_hidden"];
  arma::Mat<T>* dweight_input = grads.param("weight_input");
  arma::Mat<T>* dweight_hidden = grads.param("weight_hidden");
  arma::Mat<T>* dbias = grads.param("bias");
  arma::Mat<T>* dbias_hidden = Cell::separate_hidden ? grads.param("bias_hidden") : nullptr;
  arma::Mat<T>* dx = grads.dx();

  // Scratch, carved from the kept workspace: dp and de (G × T·B) of every step, the running
  // dh and dc (H × B each), and the input gradient of the steps when x begins with a state.
  const std::size_t n_de = Cell::separate_hidden ? G * TB : 0;
  const std::size_t n_dsteps = dx && o.initial_state ? F * TB : 0;
  arma::Mat<T>& work = grads.workspace();
  work.set_size(G * TB + n_de + 2 * H * B + n_dsteps, 1);
  arma::Mat<T> dp(work.memptr(), G, TB, false, true);
  arma::Mat<T> de(Cell::separate_hidden ? work.memptr() + G * TB : work.memptr(), G, TB, false, true);
  arma::Mat<T> dh(work.memptr() + G * TB + n_de, H, B, false, true);
  arma::Mat<T> dc(work.memptr() + G * TB + n_de + H * B, H, B, false, true);
  dh.zeros();
  dc.zeros();
  const T* dy_mem = dy.memptr();
  const std::size_t ld_dy = dy.n_rows;
  // The gradient of a sample's last-step output and final state, which its last real step
  // (or, with no real step, its initial state) produced.
  const auto add_last_step_gradient = [&](const T* dy_b, T* dh_b, T* dc_b) {
    if (!o.return_sequences)
      for (std::size_t r = 0; r < H; ++r) dh_b[r] += dy_b[r];
    if (!o.return_state) return;
    for (std::size_t r = 0; r < H; ++r) dh_b[r] += dy_b[out_rows + r];
    if constexpr (Cell::has_cell)
      for (std::size_t r = 0; r < H; ++r) dc_b[r] += dy_b[out_rows + H + r];
  };

  for (std::size_t t = steps; t-- > 0;) {
    const T* h_prev = t == 0 ? cache.initial.memptr() : cache.hidden.colptr(t - 1);
    const std::size_t ld_h = t == 0 ? S : H * steps;
    const T* c_prev = nullptr;
    if constexpr (Cell::has_cell) c_prev = t == 0 ? cache.initial.memptr() + H : cache.cell.colptr(t - 1);
    for (std::size_t b = 0; b < B; ++b) {
      const std::size_t j = b * steps + t, length = cache.lengths[b];
      T* dh_b = dh.colptr(b);
      T* dc_b = dc.colptr(b);
      if (t >= length) {  // padding: no gradient reaches or leaves this step
        std::fill_n(dp.colptr(j), G, T(0));
        if constexpr (Cell::separate_hidden) std::fill_n(de.colptr(j), G, T(0));
        std::fill_n(dh_b, H, T(0));
        std::fill_n(dc_b, H, T(0));
        continue;
      }
      const T* dy_b = dy_mem + b * ld_dy;
      if (o.return_sequences)
        for (std::size_t r = 0; r < H; ++r) dh_b[r] += dy_b[t * H + r];
      if (t + 1 == length) add_last_step_gradient(dy_b, dh_b, dc_b);
      Cell::backward(H, cache.gates.colptr(j),
                     Cell::separate_hidden ? cache.projected.colptr(j) : nullptr,
                     h_prev + b * ld_h, c_prev ? c_prev + b * ld_h : nullptr,
                     Cell::has_cell ? cache.cell.colptr(j) : nullptr, dh_b, dc_b, dp.colptr(j),
                     Cell::separate_hidden ? de.colptr(j) : nullptr);
    }
    // d h_prev += Uᵀ de_t (one GEMM for every sample), dU += de_t h_prevᵀ; neither before
    // the first step from a zero state, which takes no gradient and adds 0 to dU.
    const T* de_t = de.colptr(t);
    if (t == 0 && !o.initial_state) {
      if (steps == 1 && dweight_hidden) dweight_hidden->zeros();
      continue;
    }
    gemm<T>('T', 'N', H, B, G, u.memptr(), G, de_t, G * steps, dh.memptr(), H, T(1));
    if (dweight_hidden)
      gemm<T>('N', 'T', G, H, B, de_t, G * steps, h_prev, ld_h, dweight_hidden->memptr(), G,
              t + 1 == steps ? T(0) : T(1));
  }
  // Samples of no real step: their output and final state are the initial state.
  for (std::size_t b = 0; b < B; ++b) {
    if (cache.lengths[b] != 0) continue;
    add_last_step_gradient(dy_mem + b * ld_dy, dh.colptr(b), dc.colptr(b));
  }
  const T* seq = o.initial_state ? cache.steps.memptr() : cache.x->memptr();
  if (dweight_input) gemm<T>('N', 'T', G, F, TB, dp.memptr(), G, seq, F, dweight_input->memptr(), G);
  if (dbias) *dbias = arma::sum(dp, 1);
  if (dbias_hidden) *dbias_hidden = arma::sum(de, 1);
  if (!dx) return;
  if (!o.initial_state) {
    // dx = Wᵀ dp: the input gradient of every step in one GEMM, straight into dx.
    gemm<T>('T', 'N', F, TB, G, w.memptr(), G, dp.memptr(), G, dx->memptr(), F);
    return;
  }
  arma::Mat<T> dsteps(work.memptr() + G * TB + n_de + 2 * H * B, F * steps, B, false, true);
  gemm<T>('T', 'N', F, TB, G, w.memptr(), G, dp.memptr(), G, dsteps.memptr(), F);
  dx->rows(0, H - 1) = dh;
  if constexpr (Cell::has_cell) dx->rows(H, 2 * H - 1) = dc;
  dx->rows(S, dx->n_rows - 1) = dsteps;
}

}  // namespace layercache::detail

namespace layercache {

template <class Derived>
RecurrentLayer<Derived>::RecurrentLayer(RecurrentOptions options) : options_(options) {
  detail::check_recurrent_options(options_, Derived::Cell::gates, Derived::kind_name);
}

template <class Derived>
Shape RecurrentLayer<Derived>::output_shape(const Shape& input) const {
  using Cell = typename Derived::Cell;
  return detail::recurrent_output_shape(options_, detail::state_rows<Cell>(options_.n_hidden), input);
}

template <class Derived>
std::vector<TensorSpec> RecurrentLayer<Derived>::param_specs(const Shape&) const {
  using Cell = typename Derived::Cell;
  return detail::recurrent_param_specs(options_, Cell::gates, Cell::separate_hidden);
}

template <class Derived>
template <class T>
void RecurrentLayer<Derived>::forward_t(const Tensors<T>& params, const ConstBuffer<T>& x,
                                        arma::Mat<T>& y, RecurrentCache<T>& cache,
                                        const LayerCall<T>& call) const {
  detail::recurrent_forward<typename Derived::Cell>(options_, params, x, y, cache, call);
}

template <class Derived>
template <class T>
void RecurrentLayer<Derived>::backward_t(const Tensors<T>& params, const RecurrentCache<T>& cache,
                                         const arma::Mat<T>& dy, Gradients<T>& grads) const {
  detail::recurrent_backward<typename Derived::Cell>(options_, params, cache, dy, grads);
}

}  // namespace layercache
