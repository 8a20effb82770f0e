// Network: a sequence of layers that is itself a layer, so networks nest to any depth.
//
// Children are named by an explicit name (named("encoder", ...)) or by kind and a per-kind
// counter: Network{Dense(784, 256), ReLU(), Dense(256, 10)} has children dense1, relu1,
// dense2, and params paths dense1/weight, dense1/bias, dense2/weight, dense2/bias. A layer
// without params still has an (empty) entry, so params from a network of another structure
// are rejected, and so is an entry no layer declares. Network is a combinator written on the
// public machinery of combinator.hpp, like Residual, Parallel and Graph.
#pragma once

#include <initializer_list>
#include <string>
#include <vector>

#include "layercache/combinator.hpp"
#include "layercache/summary.hpp"

namespace layercache {

/// What a network keeps for backward: each child's forward result (its output, shared with
/// the next child's cache, and its cache).
template <class T>
using NetworkCache = ChildrenCache<T>;

/// A sequential network of layers; itself a Layer.
class Network : public CombinatorImpl<Network, ChildrenCache> {
 public:
  /// The layer's kind.
  static constexpr const char* kind_name = "network";

  /// A network of the given layers, applied in order.
  Network(std::initializer_list<AnyLayer> layers);
  /// A network of the given layers, applied in order.
  explicit Network(std::vector<AnyLayer> layers);

  Shape output_shape(const Shape& input) const override;
  std::vector<Part> parts(const Shape& input) const override;

  /// Number of children.
  std::size_t size() const noexcept { return children_.size(); }
  /// Name of child i (its path segment).
  const std::string& name(std::size_t i) const { return children_.at(i).name; }
  /// Child i.
  const Layer& layer(std::size_t i) const { return *children_.at(i).layer; }
  /// The children, in order.
  const std::vector<Child>& children() const noexcept { return children_; }
  /// layercache::summary<float>(*this, input, options): every layer's path, kind, output
  /// shape, parameter count and cache bytes of one training step, nested combinators indented.
  std::string summary(const Shape& input, const SummaryOptions& options = {}) const;

  /// Forward through every child in order (see CombinatorImpl).
  template <class T>
  void forward_t(const Tree<T>& params, const Tree<T>& state, const ConstBuffer<T>& x,
                 const LayerCall<T>& call, ChildrenCache<T>& cache, ForwardResult<T>& out) const;
  /// Backward through every child in reverse (see CombinatorImpl).
  template <class T>
  void backward_t(const Tree<T>& params, const ChildrenCache<T>& cache, const arma::Mat<T>& dy,
                  const Needs& needs, BackwardResult<T>& out) const;
  /// Inference through every child (see CombinatorImpl).
  template <class T>
  void infer_t(const Tree<T>& params, const Tree<T>& state, const arma::Mat<T>& x,
               const LayerCall<T>& call, arma::Mat<T>& y) const;

 private:
  std::vector<Child> children_;
};

extern template class LayerImpl<Network, ChildrenCache>;

}  // namespace layercache
