// What the recurrent layers (SimpleRNN, LSTM, GRU) share: their options and their cache.
//
// A sequence sample of T steps of n_in features is one column, step t at rows
// [t·n_in, (t+1)·n_in); viewed in place as an (n_in × T·batch) matrix, column b·T + t is step t
// of sample b (docs/sequences.md). A recurrent layer takes any input whose size is a whole
// number of steps (with `initial_state`, after the state's rows), so an image of 28 rows of 28
// pixels is read as 28 steps with no reshape. The lengths of a padded batch come from
// Context::lengths; the hidden state enters and leaves as rows of x and y, never as a field.
#pragma once

#include <cstddef>
#include <vector>

#include "layercache/layer_impl.hpp"

namespace layercache {

/// Options of SimpleRNN, LSTM and GRU.
struct RecurrentOptions {
  /// Features of one step of the input.
  std::size_t n_in = 0;
  /// Size of the hidden state h (the output of one step).
  std::size_t n_hidden = 0;
  /// Output the hidden state of every step (`Shape{T, n_hidden}`, 0 at padding steps) instead
  /// of the last real step's alone (`Shape{n_hidden}`).
  bool return_sequences = false;
  /// The input sample begins with the initial state (h₀, then c₀ for an LSTM) before the
  /// steps; without it the initial state is zero.
  bool initial_state = false;
  /// The output sample ends with the final state (h, then c for an LSTM) of each sample's
  /// last real step, after the output.
  bool return_state = false;
};

/// What a recurrent layer keeps for backward. Column b·T + t of the step matrices is step t
/// of sample b; entries of padding steps are never read.
template <class T>
struct RecurrentCache : Cache {
  ConstBuffer<T> x;          ///< input (rows × batch), shared with the previous layer's output
  arma::Mat<T> steps;        ///< (T·n_in × batch) copy of the steps when x begins with a state
  arma::Mat<T> initial;      ///< (state rows × batch) initial state: h₀ (and c₀), zero by default
  arma::Mat<T> gates;        ///< (gates·H × T·batch) gate activations of every step
  arma::Mat<T> hidden;       ///< (H × T·batch) hidden state after every step
  arma::Mat<T> cell;         ///< (H × T·batch) LSTM cell state after every step; else empty
  arma::Mat<T> projected;    ///< (3H × T·batch) GRU's U h + b_hidden of every step; else empty
  std::vector<std::size_t> lengths;  ///< (batch) real steps of every sample

  /// The input (when it is the steps) and the step matrices.
  void for_each_buffer(const BufferVisitor& f) const override {
    visit_buffer(x, f);
    for (const auto* m : {&steps, &initial, &gates, &hidden, &cell, &projected}) visit_buffer(*m, f);
  }
};

/// The base of SimpleRNN, LSTM and GRU: the time loop, the states and the lengths, shared
/// (src/layers/recurrent.hpp). Derived names its kind (`kind_name`) and its `Cell`, the
/// math of one step forward and backward (defined in its src/layers/ file).
/// Params: weight_input W (gates·H × n_in), weight_hidden U (gates·H × H), bias
/// (gates·H), and for a GRU bias_hidden (gates·H).
template <class Derived>
class RecurrentLayer : public LayerImpl<Derived, RecurrentCache> {
 public:
  /// Shape{T, H}, Shape{H}, or Shape{rows} with the final state's rows after the output.
  Shape output_shape(const Shape& input) const override;
  std::vector<TensorSpec> param_specs(const Shape& input) const override;
  /// The options.
  const RecurrentOptions& options() const noexcept { return options_; }

  /// Runs the steps (see LayerImpl).
  template <class T>
  void forward_t(const Tensors<T>& params, const ConstBuffer<T>& x, arma::Mat<T>& y,
                 RecurrentCache<T>& cache, const LayerCall<T>& call) const;
  /// Backpropagation through time (see LayerImpl).
  template <class T>
  void backward_t(const Tensors<T>& params, const RecurrentCache<T>& cache,
                  const arma::Mat<T>& dy, Gradients<T>& grads) const;

 protected:
  /// Checks the options (n_in and n_hidden positive, else ConfigError).
  explicit RecurrentLayer(RecurrentOptions options);

 private:
  RecurrentOptions options_;
};

}  // namespace layercache
