// The layer contract (docs/contract.md).
//
// A Layer holds hyper-parameters only and never changes after construction; every method is
// const and safe to call from several threads at once. Everything that changes is a value the
// caller owns and passes in: params and state (Tree<T>), the cache returned by forward, the
// gradients returned by backward, and the Rng inside the Context.
//
//   forward(params, x, ctx)           -> ForwardResult  {output, cache, new state}
//   backward(params, cache, dy, needs) -> BackwardResult {dx, grads}
//   infer(params, x)                  -> output only, no cache
//
// Data layout: one sample per column. A batch x is (shape.size() × batch).
//
// The virtual methods (`*_into`) write into a result the caller may reuse from the previous
// step: when shapes match, buffers are overwritten instead of reallocated, and the values
// are identical to those of a fresh call. A steady-state training step then allocates nothing.
// Layer authors implement the templates of LayerImpl (see docs/custom_layer.md).
#pragma once

#include <armadillo>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "layercache/errors.hpp"
#include "layercache/executor.hpp"
#include "layercache/rng.hpp"
#include "layercache/shape.hpp"
#include "layercache/tree.hpp"

namespace layercache {

class Initializer;

/// Whether forward runs for training (build caches, draw dropout masks, update state) or
/// for inference.
enum class Mode { train, infer };

/// Per-call settings of forward: the mode, the random stream and numeric checking.
struct Context {
  /// Training or inference.
  Mode mode = Mode::train;
  /// Random stream for layers that draw (dropout); may be null for layers that never draw.
  Rng* rng = nullptr;
  /// When true, networks check every activation for NaN/Inf and throw NumericError naming
  /// the first layer whose input or output is not finite.
  bool check_finite = false;
  /// Threads a layer may split the work of this forward call across (intra-layer
  /// parallelism), or null for the calling thread alone. Dense splits its matrix product
  /// by output rows when it is large enough to pay for the threads; layers without
  /// parallel code ignore it. The BLAS should be single-threaded meanwhile (train_step
  /// with Split::layers sees to that).
  Executor* executor = nullptr;
};

/// What a tensor is for; tells initializers how to fill it.
enum class Role { weight, bias, scale, shift, other };

/// Declaration of one tensor a layer owns: its name, shape, role and fans for initializers.
struct TensorSpec {
  /// Name inside the layer ("weight", "bias").
  std::string name;
  /// Rows of the tensor.
  std::size_t rows = 0;
  /// Columns of the tensor.
  std::size_t cols = 1;
  /// Role; biases are initialized to zero, weights by the initializer.
  Role role = Role::weight;
  /// Number of inputs feeding one output unit (for Xavier, He, LeCun).
  std::size_t fan_in = 0;
  /// Number of outputs fed by one input unit.
  std::size_t fan_out = 0;
};

/// A set of frozen parameter paths, stored as a trie mirroring the params tree. Built with
/// freeze(); consulted by backward (no gradient is computed for frozen tensors).
class FrozenSet {
 public:
  struct Entry;
  /// True when everything beneath this node is frozen.
  bool all() const noexcept { return all_; }
  /// True when nothing is frozen.
  bool empty() const noexcept { return !all_ && entries_.empty(); }
  /// The sub-set for child `name`, or nullptr when nothing beneath it is frozen.
  const FrozenSet* child(std::string_view name) const noexcept;
  /// Marks the slash-separated path (a leaf or a whole branch) as frozen.
  void insert(std::string_view path);
  /// True when the slash-separated path is frozen.
  bool contains(std::string_view path) const noexcept;

 private:
  bool all_ = false;
  std::vector<Entry> entries_;
};

/// One child of a FrozenSet node: the path segment and what is frozen beneath it.
struct FrozenSet::Entry {
  /// The path segment.
  std::string name;
  /// What is frozen beneath it.
  FrozenSet set;
};

/// The frozen set of all leaves of `params` matching any of the glob patterns (see
/// path_matches). A pattern that matches nothing throws ConfigError listing the paths.
template <class T>
FrozenSet freeze(const Tree<T>& params, const std::vector<std::string>& patterns);

/// What backward must compute: the input gradient, and which parameter gradients (and the
/// threads it may use).
struct Needs {
  /// Compute dx (the first layer of a network does not need it).
  bool input = true;
  /// Frozen parameters (no gradient computed); nullptr means every parameter is wanted.
  const FrozenSet* frozen = nullptr;
  /// Threads backward may split its work across, as Context::executor for forward; null
  /// for the calling thread alone. Passed on to a network's children.
  Executor* executor = nullptr;

  /// True when the gradient of this layer's parameter `name` is wanted.
  bool param(std::string_view name) const noexcept;
  /// The needs of a child called `name`, with its own `input` flag.
  Needs child(std::string_view name, bool child_input) const noexcept;
};

/// What backward needs from forward. Each layer defines a named struct deriving from Cache
/// whose fields carry shape comments. Buffers are held through shared pointers so that a
/// buffer two neighbours need (a ReLU output that is the next dense layer's input) is stored
/// once. A cache is never changed by backward.
class Cache {
 public:
  virtual ~Cache() = default;
  /// The kind of layer that made it ("dense"), for error messages.
  virtual const char* kind() const noexcept = 0;
  /// Calls f(address, bytes) for every buffer the cache refers to (shared ones included).
  virtual void for_each_buffer(const std::function<void(const void*, std::size_t)>& f) const = 0;
  /// Bytes held by the cache, each shared buffer counted once.
  std::size_t bytes() const;
};

/// A tensor buffer that can be shared between an output and the caches that read it.
template <class T>
using Buffer = std::shared_ptr<arma::Mat<T>>;
/// A read-only shared tensor buffer.
template <class T>
using ConstBuffer = std::shared_ptr<const arma::Mat<T>>;

/// Reports a cache's buffer to a for_each_buffer visitor: the address of its data and its
/// size in bytes (nothing for a null buffer). For layer authors.
template <class T>
void visit_buffer(const ConstBuffer<T>& buffer,
                  const std::function<void(const void*, std::size_t)>& f) {
  if (buffer) f(buffer->memptr(), buffer->n_elem * sizeof(T));
}

/// The result of forward, reusable as the destination of the next forward.
template <class T>
struct ForwardResult {
  /// The output, (shape.size() × batch). May alias the input for layers that do not
  /// change values (Identity, Flatten).
  ConstBuffer<T> output;
  /// Per-sample output shape.
  Shape shape;
  /// What backward needs.
  std::unique_ptr<Cache> cache;
  /// The new state after a training forward (empty for stateless layers).
  Tree<T> state;
  /// Storage this result owns for its output (reused across calls).
  Buffer<T> storage;
  /// Copy of the caller's input when forward was called with a plain matrix.
  Buffer<T> input;

  /// The output matrix.
  const arma::Mat<T>& y() const { return *output; }
  /// The output storage, sized (rows × cols) without reallocating when the size is
  /// unchanged; also points `output` at it. For layer authors.
  arma::Mat<T>& write_output(std::size_t rows, std::size_t cols);
  /// The cache as type C, reusing the existing object when it already has that type.
  /// For layer authors.
  template <class C>
  C& reuse_cache() {
    if (auto* c = dynamic_cast<C*>(cache.get())) return *c;
    auto fresh = std::make_unique<C>();
    C& ref = *fresh;
    cache = std::move(fresh);
    return ref;
  }
};

/// The result of backward, reusable as the destination of the next backward.
template <class T>
struct BackwardResult {
  /// Gradient with respect to the input, (n_in × batch); empty when not requested.
  arma::Mat<T> dx;
  /// Gradients, mirroring params; the leaves of frozen tensors are empty (not computed).
  Tree<T> grads;
  /// Workspace of combinators (one result per child), reused across calls.
  std::vector<BackwardResult> parts;
};

/// Makes `grads` mirror `params`: wanted leaves sized like their params, frozen leaves
/// empty. Allocates nothing when `grads` already has that form.
template <class T>
void prepare_grads(const Tree<T>& params, const Needs& needs, Tree<T>& grads);

/// The parameter `name` of a layer's params, checked to be (rows × cols); throws ConfigError
/// when missing and ShapeError (path = name) when of another shape. For layer authors.
template <class T>
const arma::Mat<T>& param(const Tree<T>& params, std::string_view name, std::size_t rows,
                          std::size_t cols);

namespace detail {
/// Throws the CacheError of cache_as: `cache` is not what a `layer_kind` layer's forward makes.
[[noreturn]] void throw_foreign_cache(const Cache& cache, const char* layer_kind);
}  // namespace detail

/// The cache as the layer's own cache type; throws CacheError naming both kinds otherwise.
/// For layer authors.
template <class C>
const C& cache_as(const Cache& cache, const char* layer_kind) {
  if (auto* c = dynamic_cast<const C*>(&cache)) return *c;
  detail::throw_foreign_cache(cache, layer_kind);
}

/// Throws ShapeError when the batch x does not have `expected` rows.
void check_rows(std::size_t got_rows, const Shape& expected, const char* what = "input");

class Layer;

/// A named child of a combinator, with the input shape it receives.
struct Part {
  /// The child's name (its path segment).
  std::string name;
  /// The child layer.
  const Layer* layer = nullptr;
  /// The per-sample shape the child receives.
  Shape input;
};

/// The interface every layer implements. Hyper-parameters only: all methods are const.
class Layer {
 public:
  virtual ~Layer() = default;

  /// Short lowercase kind ("dense", "relu"); networks name children kind + counter.
  virtual std::string kind() const = 0;
  /// Checks the per-sample input shape and returns the output shape; throws ShapeError
  /// saying what was expected and what was found.
  virtual Shape output_shape(const Shape& input) const = 0;
  /// The tensors this layer owns for the given input shape (none by default).
  virtual std::vector<TensorSpec> param_specs(const Shape& input) const;
  /// The non-trainable state tensors (none by default).
  virtual std::vector<TensorSpec> state_specs(const Shape& input) const;
  /// Children of a combinator with their input shapes (none for a plain layer).
  virtual std::vector<Part> parts(const Shape& input) const;
  /// Number of entries of this layer's own node in a params tree for the given input shape:
  /// one per part and one per tensor of param_specs, as init makes them. A network compares
  /// it with the params it is given on every call, so that an entry no layer declares is a
  /// ConfigError instead of being passed over (and moved by the optimizer). The default
  /// counts parts(input) and param_specs(input), which allocates for a layer that owns
  /// tensors: such a layer overrides it with the count alone to keep a steady-state step
  /// allocation-free.
  virtual std::size_t param_entries(const Shape& input) const;
  /// Number of entries of this layer's own node in a state tree for the given input shape:
  /// one per part and one per tensor of state_specs (see param_entries).
  virtual std::size_t state_entries(const Shape& input) const;

  /// Forward pass writing into `out` (reused when shapes match).
  virtual void forward_into(const Tree<float>& params, const Tree<float>& state,
                            const ConstBuffer<float>& x, const Shape& x_shape,
                            const Context& ctx, ForwardResult<float>& out) const = 0;
  /// Forward pass writing into `out` (reused when shapes match).
  virtual void forward_into(const Tree<double>& params, const Tree<double>& state,
                            const ConstBuffer<double>& x, const Shape& x_shape,
                            const Context& ctx, ForwardResult<double>& out) const = 0;
  /// Backward pass writing into `out`; out.grads must mirror params (prepare_grads).
  virtual void backward_into(const Tree<float>& params, const Cache& cache,
                             const arma::Mat<float>& dy, const Needs& needs,
                             BackwardResult<float>& out) const = 0;
  /// Backward pass writing into `out`; out.grads must mirror params (prepare_grads).
  virtual void backward_into(const Tree<double>& params, const Cache& cache,
                             const arma::Mat<double>& dy, const Needs& needs,
                             BackwardResult<double>& out) const = 0;
  /// Inference: the output alone, no cache.
  virtual void infer_into(const Tree<float>& params, const Tree<float>& state,
                          const arma::Mat<float>& x, const Shape& x_shape,
                          arma::Mat<float>& y) const = 0;
  /// Inference: the output alone, no cache.
  virtual void infer_into(const Tree<double>& params, const Tree<double>& state,
                          const arma::Mat<double>& x, const Shape& x_shape,
                          arma::Mat<double>& y) const = 0;

  /// Fresh params for the given input shape: weights drawn by `initializer` from `rng`,
  /// biases zero.
  template <class T = float>
  Tree<T> init(const Shape& input, const Initializer& initializer, Rng& rng) const;
  /// Fresh state for the given input shape (empty branches for stateless layers).
  template <class T = float>
  Tree<T> init_state(const Shape& input) const;

  /// Forward on a plain matrix whose samples have shape (x.n_rows).
  template <class T>
  ForwardResult<T> forward(const Tree<T>& params, const arma::Mat<T>& x,
                           const Context& ctx = {}) const;
  /// Forward on a plain matrix whose samples have shape `x_shape`.
  template <class T>
  ForwardResult<T> forward(const Tree<T>& params, const arma::Mat<T>& x, const Shape& x_shape,
                           const Context& ctx = {}, const Tree<T>& state = {}) const;
  /// Forward writing into `reuse` (the previous step's result): no allocation when the
  /// shapes are unchanged.
  template <class T>
  void forward(const Tree<T>& params, const arma::Mat<T>& x, const Shape& x_shape,
               const Context& ctx, ForwardResult<T>& reuse, const Tree<T>& state = {}) const;
  /// Backward: input gradient and parameter gradients.
  template <class T>
  BackwardResult<T> backward(const Tree<T>& params, const Cache& cache, const arma::Mat<T>& dy,
                             const Needs& needs = {}) const;
  /// Backward writing into `reuse` (the previous step's result).
  template <class T>
  void backward(const Tree<T>& params, const Cache& cache, const arma::Mat<T>& dy,
                const Needs& needs, BackwardResult<T>& reuse) const;
  /// Inference on a plain matrix (samples of shape `x_shape`, or (x.n_rows) when empty).
  template <class T>
  arma::Mat<T> infer(const Tree<T>& params, const arma::Mat<T>& x, const Shape& x_shape = {},
                     const Tree<T>& state = {}) const;
};

/// Base for concrete layers: implements the virtual interface for float and double by
/// calling the derived class's member templates
///   forward_t(params, state, x, x_shape, ctx, out)
///   backward_t(params, cache, dy, needs, out)
///   infer_t(params, state, x, x_shape, y)
/// so a layer is written once for any element type.
template <class Derived>
class LayerImpl : public Layer {
 public:
  /// Calls Derived::forward_t<float> (see Layer::forward_into).
  void forward_into(const Tree<float>& p, const Tree<float>& s, const ConstBuffer<float>& x,
                    const Shape& xs, const Context& c, ForwardResult<float>& o) const override {
    self().forward_t(p, s, x, xs, c, o);
  }
  /// Calls Derived::forward_t<double> (see Layer::forward_into).
  void forward_into(const Tree<double>& p, const Tree<double>& s, const ConstBuffer<double>& x,
                    const Shape& xs, const Context& c, ForwardResult<double>& o) const override {
    self().forward_t(p, s, x, xs, c, o);
  }
  /// Calls Derived::backward_t<float> (see Layer::backward_into).
  void backward_into(const Tree<float>& p, const Cache& c, const arma::Mat<float>& dy,
                     const Needs& n, BackwardResult<float>& o) const override {
    self().backward_t(p, c, dy, n, o);
  }
  /// Calls Derived::backward_t<double> (see Layer::backward_into).
  void backward_into(const Tree<double>& p, const Cache& c, const arma::Mat<double>& dy,
                     const Needs& n, BackwardResult<double>& o) const override {
    self().backward_t(p, c, dy, n, o);
  }
  /// Calls Derived::infer_t<float> (see Layer::infer_into).
  void infer_into(const Tree<float>& p, const Tree<float>& s, const arma::Mat<float>& x,
                  const Shape& xs, arma::Mat<float>& y) const override {
    self().infer_t(p, s, x, xs, y);
  }
  /// Calls Derived::infer_t<double> (see Layer::infer_into).
  void infer_into(const Tree<double>& p, const Tree<double>& s, const arma::Mat<double>& x,
                  const Shape& xs, arma::Mat<double>& y) const override {
    self().infer_t(p, s, x, xs, y);
  }

 private:
  const Derived& self() const { return static_cast<const Derived&>(*this); }
};

/// A cheap value handle to an immutable layer, optionally named. Copying shares the layer.
/// Any layer converts to it, so networks are written as lists: {Dense(784, 256), ReLU()}.
class AnyLayer {
 public:
  /// Wraps a copy of `layer`.
  template <class L, class = std::enable_if_t<std::is_base_of_v<Layer, std::decay_t<L>> &&
                                              !std::is_same_v<std::decay_t<L>, AnyLayer>>>
  AnyLayer(L&& layer)  // NOLINT(google-explicit-constructor): lists of layers read naturally
      : layer_(std::make_shared<const std::decay_t<L>>(std::forward<L>(layer))) {}
  /// Wraps a shared layer.
  explicit AnyLayer(std::shared_ptr<const Layer> layer, std::string name = {});

  /// The same layer under an explicit name (its path segment in a network).
  AnyLayer named(std::string name) const;
  /// The explicit name, or empty when the network should choose one.
  const std::string& name() const noexcept { return name_; }
  /// The layer.
  const Layer& operator*() const noexcept { return *layer_; }
  /// The layer.
  const Layer* operator->() const noexcept { return layer_.get(); }
  /// The shared pointer to the layer.
  const std::shared_ptr<const Layer>& shared() const noexcept { return layer_; }

 private:
  std::shared_ptr<const Layer> layer_;
  std::string name_;
};

/// `layer` under an explicit name: named("encoder", Network{...}).
AnyLayer named(std::string name, AnyLayer layer);

}  // namespace layercache
