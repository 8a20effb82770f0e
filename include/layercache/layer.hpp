// The layer contract (docs/contract.md): what every layer is to its callers.
//
// A Layer holds hyper-parameters only and never changes after construction; every method is
// const and safe to call from several threads at once. Everything that changes is a value the
// caller owns and passes in: params and state (Tree<T>), the cache returned by forward, the
// gradients returned by backward, and the Rng inside the Context.
//
//   forward(params, x, ctx)            -> ForwardResult  {output, cache, new state}
//   backward(params, cache, dy, needs) -> BackwardResult {dx, grads}
//   infer(params, x)                   -> output only, no cache
//
// Data layout: one sample per column. A batch x is (shape.size() × batch).
//
// Layer authors do not implement this interface by hand: they derive from LayerImpl
// (layer_impl.hpp: a layer's math) or CombinatorImpl (combinator.hpp: a layer made of named
// child layers), which do the checks every layer needs. See docs/custom_layer.md.
#pragma once

#include <armadillo>
#include <cstddef>
#include <functional>
#include <memory>
#include <atomic>
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
class Layer;

/// Whether forward runs for training (build caches, draw dropout masks, update state) or
/// for inference.
enum class Mode { train, infer };

/// Sums across the shards of one data-parallel step (train_step with Split::batch): a layer
/// whose result depends on the whole batch (BatchNorm's statistics) adds up its per-shard
/// partial sums with it, and so computes on every shard what one pass over the whole batch
/// would. Each shard of the step is handed its own BatchReduction (Context::batch_reduction
/// and Needs::batch_reduction); layers reach it through LayerCall::sum_over_batch and
/// Gradients::sum_over_batch, which do nothing when there is none (a step on one thread).
class BatchReduction {
 public:
  virtual ~BatchReduction() = default;
  /// Number of shards taking part.
  virtual std::size_t shards() const noexcept = 0;
  /// Replaces values[0..n) by their sum over all shards, added in shard order so that every
  /// shard receives the same bits. Every shard of the step calls it, in the same order with
  /// the same n; it returns when all have. Throws Error when another shard failed meanwhile.
  virtual void sum(float* values, std::size_t n) = 0;
  /// The same in double precision.
  virtual void sum(double* values, std::size_t n) = 0;
};

/// Per-call settings of forward: the mode, the random stream and numeric checking.
struct Context {
  /// Training or inference.
  Mode mode = Mode::train;
  /// Random stream for layers that draw (dropout); may be null for layers that never draw.
  Rng* rng = nullptr;
  /// When true, every layer checks its input and output for NaN/Inf and throws NumericError
  /// naming the innermost layer where one first appears.
  bool check_finite = false;
  /// Threads a layer may split the work of this forward call across (intra-layer
  /// parallelism), or null for the calling thread alone. Dense splits its matrix product
  /// by output rows when it is large enough to pay for the threads; layers without
  /// parallel code ignore it. The BLAS should be single-threaded meanwhile (train_step
  /// with Split::layers sees to that).
  Executor* executor = nullptr;
  /// The sums across the shards of a data-parallel step, or null when the batch is whole
  /// (see BatchReduction).
  BatchReduction* batch_reduction = nullptr;
  /// For a batch of padded sequences: the number of real steps of each sample, one per
  /// column (each at most the sequence length T), read by every sequence layer of the call
  /// and kept in its cache for backward; null when every sample has all T steps. The steps
  /// past a sample's length are padding and never change an output or a gradient
  /// (docs/sequences.md).
  const arma::uvec* lengths = nullptr;
};

/// What a tensor is for; tells init and initializers how to fill it. Weights (and `other`)
/// are drawn by the initializer; biases and shifts start at zero, scales at one. The two
/// roles of running statistics are for state tensors (state_specs): init_state starts a
/// running mean at zero and a running variance at one, whatever the initializer.
enum class Role { weight, bias, scale, shift, other, running_mean, running_variance };

/// Declaration of one tensor a layer owns: its name, shape, role and fans for initializers.
struct TensorSpec {
  /// Name inside the layer ("weight", "bias").
  std::string name;
  /// Rows of the tensor.
  std::size_t rows = 0;
  /// Columns of the tensor.
  std::size_t cols = 1;
  /// Role; biases are initialized to zero, weights by the initializer, running variances
  /// and scales to one (see Role).
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

/// Told during backward that the parameter gradients of a part of the network are final:
/// nothing later in that backward call writes them again, so they can be sent elsewhere
/// (summed across processes, layercache/distributed.hpp) while backward runs the layers
/// before them. See Needs::listener.
class GradsListener {
 public:
  GradsListener() = default;
  GradsListener(const GradsListener&) = default;  ///< Listeners copy as values.
  GradsListener& operator=(const GradsListener&) = default;  ///< Listeners copy as values.
  virtual ~GradsListener() = default;
  /// `grads`: a child's node of the gradients, final.
  virtual void grads_final(Tree<float>& grads) = 0;
  /// `grads`: a child's node of the gradients, final.
  virtual void grads_final(Tree<double>& grads) = 0;
};

/// What backward must compute: the input gradient, and which parameter gradients (and the
/// threads it may use).
struct Needs {
  /// Compute dx (the first layer of a network does not need it).
  bool input = true;
  /// Frozen parameters (no gradient computed); nullptr means every parameter is wanted.
  const FrozenSet* frozen = nullptr;
  /// Threads backward may split its work across, as Context::executor for forward; null
  /// for the calling thread alone. Passed on to a combinator's children.
  Executor* executor = nullptr;
  /// The sums across the shards of a data-parallel step, as Context::batch_reduction for
  /// forward; passed on to a combinator's children.
  BatchReduction* batch_reduction = nullptr;
  /// Told when a child's gradients are final, by the combinator that receives these needs
  /// (Network tells it after each child's backward; see notify_grads_final); null for
  /// nobody. Not passed on to the children: each gradient is announced once, by the
  /// outermost combinator, and a layer that announces nothing leaves its gradients to be
  /// collected when backward returns.
  GradsListener* listener = nullptr;

  /// True when the gradient of this layer's parameter `name` is wanted.
  bool param(std::string_view name) const noexcept;
  /// The needs of a child called `name`, with its own `input` flag.
  Needs child(std::string_view name, bool child_input) const noexcept;
};

/// Visitor of a cache's buffers: called with the address of a buffer's data and its size in
/// bytes.
using BufferVisitor = std::function<void(const void* data, std::size_t bytes)>;

namespace detail {
struct CacheStamp;
}  // namespace detail

/// What backward needs from forward. Each layer defines a named struct deriving from Cache
/// whose fields carry shape comments, and reports its buffers in for_each_buffer. Buffers are
/// held through shared pointers so that a buffer two neighbours need (a ReLU output that is
/// the next dense layer's input) is stored once. A cache is never changed by backward.
///
/// The framework (LayerImpl, CombinatorImpl) stamps every cache in forward with the kind of
/// layer that made it and the shapes of that call, and checks them in backward: a cache from
/// another kind of layer, or from a layer that was given another input, is a CacheError, and
/// a dy of another shape than the output is a ShapeError, before the layer's code runs.
class Cache {
 public:
  virtual ~Cache() = default;
  /// The kind of layer that made it ("dense"), for error messages.
  const char* kind() const noexcept { return kind_; }
  /// The per-sample input shape of the forward call that made it.
  const Shape& input_shape() const noexcept { return input_; }
  /// The per-sample output shape of that call.
  const Shape& output_shape() const noexcept { return output_; }
  /// The batch size (columns) of that call.
  std::size_t batch() const noexcept { return batch_; }
  /// Calls f(address, bytes) for every buffer the cache refers to (shared ones included).
  virtual void for_each_buffer(const BufferVisitor& f) const = 0;
  /// For combinators: calls f(child name, child cache) for every child's cache (nothing by
  /// default). Network::summary reads it to report the cache bytes of every node.
  virtual void for_each_child(const std::function<void(const std::string&, const Cache&)>& f) const;
  /// Bytes held by the cache, each shared buffer counted once.
  std::size_t bytes() const;

 private:
  friend struct detail::CacheStamp;
  const char* kind_ = "unknown";
  Shape input_;
  Shape output_;
  std::size_t batch_ = 0;
};

/// The cache of a layer that keeps nothing for backward (Identity, Flatten): only the stamp
/// (kind and shapes) every cache carries, which is enough to check dy.
template <class T>
struct NoCache : Cache {
  /// No buffers.
  void for_each_buffer(const BufferVisitor& /*f*/) const override {}
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
void visit_buffer(const ConstBuffer<T>& buffer, const BufferVisitor& f) {
  if (buffer && buffer->n_elem) f(buffer->memptr(), buffer->n_elem * sizeof(T));
}
/// Reports a matrix held by value in a cache (nothing when it is empty). For layer authors.
template <class T>
void visit_buffer(const arma::Mat<T>& matrix, const BufferVisitor& f) {
  if (matrix.n_elem) f(matrix.memptr(), matrix.n_elem * sizeof(T));
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
  /// The new state after a training forward (empty for stateless layers and in infer mode).
  Tree<T> state;
  /// Storage this result owns for its output (reused across calls).
  Buffer<T> storage;
  /// Copy of the caller's input when forward was called with a plain matrix.
  Buffer<T> input;

  /// The output matrix.
  const arma::Mat<T>& y() const { return *output; }
  /// The output storage, sized (rows × cols) without reallocating when the size is
  /// unchanged; also points `output` at it.
  arma::Mat<T>& write_output(std::size_t rows, std::size_t cols);
  /// The cache as type C, reusing the existing object when it already has that type.
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
  /// Scratch space a layer's backward may use (Gradients::workspace), reused across calls.
  arma::Mat<T> workspace;
  /// Scratch of combinators (a Graph's gradient of every node's output), reused across calls.
  std::vector<arma::Mat<T>> buffers;
};

/// Makes `grads` mirror `params`: wanted leaves sized like their params, frozen leaves
/// empty. Allocates nothing when `grads` already has that form.
template <class T>
void prepare_grads(const Tree<T>& params, const Needs& needs, Tree<T>& grads);

/// The parameter `name` of a layer's params, checked to be (rows × cols); throws ConfigError
/// when missing and ShapeError (path = name) when of another shape.
template <class T>
const arma::Mat<T>& param(const Tree<T>& params, std::string_view name, std::size_t rows,
                          std::size_t cols);

/// Throws ShapeError when the batch x does not have `expected` rows.
void check_rows(std::size_t got_rows, const Shape& expected, const char* what = "input");

/// A named child of a combinator, with the input shape it receives.
struct Part {
  /// The child's name (its path segment and its entry in the combinator's params).
  std::string name;
  /// The child layer.
  const Layer* layer = nullptr;
  /// The per-sample shape the child receives.
  Shape input;
};

/// What a layer declares for one input shape: the output shape, its own tensors, its state
/// and its children. Layer::declaration computes it once per input shape.
struct Declaration {
  /// The per-sample input shape.
  Shape input;
  /// The per-sample output shape (output_shape(input)).
  Shape output;
  /// The layer's own trainable tensors (param_specs(input)).
  std::vector<TensorSpec> params;
  /// The layer's own state tensors (state_specs(input)).
  std::vector<TensorSpec> state;
  /// The children of a combinator (parts(input)); their entries come first in the layer's
  /// node of params and state, then its own tensors.
  std::vector<Part> parts;

  /// Entries of the layer's node of params (state when `of_state`): parts, then tensors.
  std::size_t entries(bool of_state) const noexcept {
    return parts.size() + (of_state ? state.size() : params.size());
  }
};

namespace detail {
/// Per-layer memo of declarations by input shape: a cache of a pure function of the layer's
/// hyper-parameters, guarded for concurrent calls. Copies start empty, so layers stay
/// copyable values.
class DeclarationMemo {
 public:
  DeclarationMemo() = default;
  /// Starts empty: the copy's own declarations are computed when first asked for.
  DeclarationMemo(const DeclarationMemo& /*other*/) noexcept {}
  /// Keeps this memo's own entries.
  DeclarationMemo& operator=(const DeclarationMemo& /*other*/) noexcept { return *this; }
  /// The kept declaration for `input`, or null.
  std::shared_ptr<const Declaration> find(const Shape& input) const;
  /// Keeps `declaration` (unless one for its input is kept already) and returns the kept one.
  std::shared_ptr<const Declaration> keep(std::shared_ptr<const Declaration> declaration) const;

 private:
  // A spin lock: held for a scan of a few entries, and <mutex> is costly to include.
  mutable std::atomic<bool> busy_{false};
  mutable std::vector<std::shared_ptr<const Declaration>> entries_;
};
}  // namespace detail

/// The interface every layer implements. Hyper-parameters only: all methods are const.
class Layer {
 public:
  Layer() = default;
  /// Layers are values: copies hold the same hyper-parameters.
  Layer(const Layer&) = default;
  /// Layers are values: copies hold the same hyper-parameters.
  Layer& operator=(const Layer&) = default;
  virtual ~Layer() = default;

  /// Short lowercase kind ("dense", "relu"); combinators name children kind + counter.
  virtual std::string kind() const = 0;
  /// Checks the per-sample input shape and returns the output shape; throws ShapeError
  /// saying what was expected and what was found.
  virtual Shape output_shape(const Shape& input) const = 0;
  /// The tensors this layer owns for the given (already checked) input shape; none by
  /// default.
  virtual std::vector<TensorSpec> param_specs(const Shape& input) const;
  /// The non-trainable state tensors for the given (already checked) input shape; none by
  /// default.
  virtual std::vector<TensorSpec> state_specs(const Shape& input) const;
  /// Children of a combinator with their input shapes (none for a plain layer).
  virtual std::vector<Part> parts(const Shape& input) const;

  /// Everything the layer declares for `input` (output shape, tensors, state, parts),
  /// computed once per input shape and kept (a steady-state step neither recomputes nor
  /// allocates it). Throws what output_shape throws for a shape the layer rejects.
  std::shared_ptr<const Declaration> declaration(const Shape& input) const;

  /// Forward pass writing into `out` (reused when shapes match).
  virtual void forward_into(const Tree<float>& params, const Tree<float>& state,
                            const ConstBuffer<float>& x, const Shape& x_shape,
                            const Context& ctx, ForwardResult<float>& out) const = 0;
  /// Forward pass writing into `out` (reused when shapes match).
  virtual void forward_into(const Tree<double>& params, const Tree<double>& state,
                            const ConstBuffer<double>& x, const Shape& x_shape,
                            const Context& ctx, ForwardResult<double>& out) const = 0;
  /// Backward pass writing into `out`.
  virtual void backward_into(const Tree<float>& params, const Cache& cache,
                             const arma::Mat<float>& dy, const Needs& needs,
                             BackwardResult<float>& out) const = 0;
  /// Backward pass writing into `out`.
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
  /// Forward on an Armadillo expression (`x.cols(0, 99)`), evaluated once into the result's
  /// input buffer.
  template <class T, class Expr>
  ForwardResult<T> forward(const Tree<T>& params, const arma::Base<T, Expr>& x,
                           const Shape& x_shape = {}, const Context& ctx = {},
                           const Tree<T>& state = {}) const {
    return forward(params, arma::Mat<T>(x.get_ref()), x_shape, ctx, state);
  }
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
  /// Inference on an Armadillo expression (`test.x.cols(0, 99)`).
  template <class T, class Expr>
  arma::Mat<T> infer(const Tree<T>& params, const arma::Base<T, Expr>& x,
                     const Shape& x_shape = {}, const Tree<T>& state = {}) const {
    return infer(params, arma::Mat<T>(x.get_ref()), x_shape, state);
  }

 private:
  detail::DeclarationMemo memo_;
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

  /// The same layer under an explicit name (its path segment in a combinator).
  AnyLayer named(std::string name) const;
  /// The explicit name, or empty when the combinator should choose one.
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
