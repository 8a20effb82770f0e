// Network: a sequence of layers that is itself a layer, so networks nest to any depth.
//
// Children are named by an explicit name (named("encoder", ...)) or by kind and a per-kind
// counter: Network{Dense(784, 256), ReLU(), Dense(256, 10)} has children dense1, relu1,
// dense2, and params paths dense1/weight, dense1/bias, dense2/weight, dense2/bias. A layer
// without params still has an (empty) entry, so params from a network of another structure
// are rejected, and so is an entry no layer declares (dense1/extra, relu1/extra, dense9),
// which a layer would pass over and an optimizer would move. The shape check and these
// checks run through the whole network before any data flows, and every error a child throws
// is rethrown with the child's name prepended to its path.
#pragma once

#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "layercache/layer.hpp"

namespace layercache {

/// What a network keeps for backward: each child's forward result (its output, shared with
/// the next child's cache, and its cache).
template <class T>
struct NetworkCache : Cache {
  std::vector<ForwardResult<T>> steps;  ///< one per child, in order; steps[i].output (n_i × batch)
  Shape input;  ///< the network's per-sample input shape (steps[i].shape is child i's output)

  const char* kind() const noexcept override { return "network"; }
  void for_each_buffer(const std::function<void(const void*, std::size_t)>& f) const override;
};

/// A sequential network of layers; itself a Layer.
class Network : public LayerImpl<Network> {
 public:
  /// A network of the given layers, applied in order.
  Network(std::initializer_list<AnyLayer> layers);
  /// A network of the given layers, applied in order.
  explicit Network(std::vector<AnyLayer> layers);

  std::string kind() const override { return "network"; }
  Shape output_shape(const Shape& input) const override;
  std::vector<Part> parts(const Shape& input) const override;
  /// One entry per child, whatever the input shape.
  std::size_t param_entries(const Shape& /*input*/) const override { return layers_.size(); }
  /// One entry per child, whatever the input shape.
  std::size_t state_entries(const Shape& /*input*/) const override { return layers_.size(); }

  /// Number of children.
  std::size_t size() const noexcept { return layers_.size(); }
  /// Name of child i (its path segment).
  const std::string& name(std::size_t i) const { return layers_.at(i).name; }
  /// Child i.
  const Layer& layer(std::size_t i) const { return *layers_.at(i).layer; }
  /// A table of every layer's path, kind, output shape and parameter count.
  std::string summary(const Shape& input) const;

  /// Forward through every child (see LayerImpl).
  template <class T>
  void forward_t(const Tree<T>& params, const Tree<T>& state, const ConstBuffer<T>& x,
                 const Shape& x_shape, const Context& ctx, ForwardResult<T>& out) const;
  /// Backward through every child in reverse (see LayerImpl).
  template <class T>
  void backward_t(const Tree<T>& params, const Cache& cache, const arma::Mat<T>& dy,
                  const Needs& needs, BackwardResult<T>& out) const;
  /// Inference through every child (see LayerImpl).
  template <class T>
  void infer_t(const Tree<T>& params, const Tree<T>& state, const arma::Mat<T>& x,
               const Shape& x_shape, arma::Mat<T>& y) const;

 private:
  struct Entry {
    std::string name;
    std::shared_ptr<const Layer> layer;
  };
  template <class T>
  void check_tree(const Tree<T>& tree, const char* what, bool allow_empty) const;
  // Each child's output shape, and its own node of params (and of state, unless empty)
  // against what it declares, from `input` through the whole network.
  template <class T>
  void check_children(const Tree<T>& params, const Tree<T>& state, const Shape& input) const;
  std::vector<Entry> layers_;
};

}  // namespace layercache
