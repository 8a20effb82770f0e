// Bidirectional: a recurrent layer run forwards and, with its own params, backwards in time.
#pragma once

#include <cstddef>
#include <vector>

#include "layercache/combinator.hpp"

namespace layercache {

/// What Bidirectional keeps for backward: both directions' forward results, the reversed
/// input the backward direction read, and the lengths.
template <class T>
struct BidirectionalCache : ChildrenCache<T> {
  Buffer<T> reversed;                ///< (T·F × batch) each sample's real steps in reverse order
  std::vector<std::size_t> lengths;  ///< (batch) real steps of every sample

  /// Both directions' buffers and the reversed input.
  void for_each_buffer(const BufferVisitor& f) const override {
    ChildrenCache<T>::for_each_buffer(f);
    visit_buffer(ConstBuffer<T>(reversed), f);
  }
};

/// Runs `layer` (a SimpleRNN, LSTM or GRU without initial_state or return_state, or a
/// network of them) over the sequence Shape{T, F} twice: child "forward" on the steps in
/// order, child "backward" (its own params) on each sample's real steps in reverse order,
/// so that with Context::lengths the backward direction starts at each sample's last real
/// step and padding stays at the end. The outputs are concatenated: at every step
/// [forward h_t; backward h_t] (Shape{T, 2H}) when the layer returns sequences (the
/// backward direction's outputs put back in time order), else [forward last; backward
/// last] (Shape{2H}, the backward direction's "last" being its state after reading the
/// first step).
class Bidirectional : public CombinatorImpl<Bidirectional, BidirectionalCache> {
 public:
  /// The layer's kind.
  static constexpr const char* kind_name = "bidirectional";
  /// `layer` in both directions (two copies with their own params).
  explicit Bidirectional(AnyLayer layer);

  /// Shape{T, 2H} or Shape{2H} for an input Shape{T, F}.
  Shape output_shape(const Shape& input) const override;
  /// "forward" and "backward", each receiving Shape{T, F}.
  std::vector<Part> parts(const Shape& input) const override;

  /// Both directions, outputs concatenated (see CombinatorImpl).
  template <class T>
  void forward_t(const Tree<T>& params, const Tree<T>& state, const ConstBuffer<T>& x,
                 const LayerCall<T>& call, BidirectionalCache<T>& cache,
                 ForwardResult<T>& out) const;
  /// Each direction's backward on its part of dy; dx the sum (see CombinatorImpl).
  template <class T>
  void backward_t(const Tree<T>& params, const BidirectionalCache<T>& cache,
                  const arma::Mat<T>& dy, const Needs& needs, BackwardResult<T>& out) const;
  /// Both directions over all T steps (infer has no lengths; see CombinatorImpl).
  template <class T>
  void infer_t(const Tree<T>& params, const Tree<T>& state, const arma::Mat<T>& x,
               const LayerCall<T>& call, arma::Mat<T>& y) const;

 private:
  std::vector<Child> children_;  // forward, backward
};

extern template class LayerImpl<Bidirectional, BidirectionalCache>;

}  // namespace layercache
