// LayerImpl: the base of a layer's math (docs/custom_layer.md).
//
// A layer author writes the math once for any element type, and the framework does the chores
// every layer would otherwise repeat. Before the layer's code runs, the framework has:
//   - checked the input shape (output_shape) and that x has its rows;
//   - checked the layer's node of params (and of state): every declared tensor present with
//     its declared shape, nothing undeclared (ConfigError / ShapeError naming the entry);
//   - sized y (output rows × batch), reusing last step's buffer;
//   - resolved the cache to the layer's own cache type, reusing last step's object, and in
//     backward checked that it is one this layer made for this input (CacheError otherwise);
//   - in backward, checked dy against the output shape (ShapeError), sized dx unless it is
//     not wanted (then Gradients::dx() is null), and sized every wanted parameter gradient
//     (a frozen one's Gradients::param() is null);
//   - with Context::check_finite, checked input and output for NaN/Inf (NumericError).
// What is left to the layer:
//
//   class Scale : public LayerImpl<Scale, ScaleCache> {
//    public:
//     static constexpr const char* kind_name = "scale";
//     Shape output_shape(const Shape& input) const override;
//     std::vector<TensorSpec> param_specs(const Shape& input) const override;   // if any
//     template <class T> void forward_t(const Tensors<T>& params, const ConstBuffer<T>& x,
//                                       arma::Mat<T>& y, ScaleCache<T>& cache,
//                                       const LayerCall<T>& call) const;
//     template <class T> void backward_t(const Tensors<T>& params, const ScaleCache<T>& cache,
//                                        const arma::Mat<T>& dy, Gradients<T>& grads) const;
//     template <class T> void infer_t(const Tensors<T>& params, const arma::Mat<T>& x,
//                                     arma::Mat<T>& y, const LayerCall<T>& call) const;
//   };
//
// infer_t is optional: without it, infer runs forward_t into a cache on the stack that is
// dropped (x and y are lent to it without a copy). A layer whose cache costs work to fill
// (MaxPool2D's argmax, a recurrent layer's gates) defines infer_t.
//
// A layer whose output is its input, read with another shape (Identity, Flatten), declares
// `static constexpr bool passes_input = true;` and writes none of the three: y aliases x and
// dx = dy. The library's layers are compiled once in src/ and declared here `extern template`.
#pragma once

#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "layercache/layer.hpp"

namespace layercache {

/// A layer's own tensors (params or state) by name, as declared by param_specs or
/// state_specs. The framework has checked them against the declaration before the layer's
/// code sees them, so a declared name is always there with its declared shape.
template <class T>
class Tensors {
 public:
  /// A view of `node`, a layer's node of params or state.
  explicit Tensors(const Tree<T>& node) noexcept : node_(&node) {}
  /// The tensor called `name`; throws ConfigError when the layer declares no such tensor.
  const arma::Mat<T>& operator[](std::string_view name) const;
  /// The whole node (a combinator's children are its branches).
  const Tree<T>& tree() const noexcept { return *node_; }

 private:
  const Tree<T>* node_;
};

/// What one forward or infer call is about, besides params, x and y: the shapes, the
/// context, the state, and the new state a training forward writes.
template <class T>
class LayerCall {
 public:
  /// A call with per-sample shapes `input` → `output` over `batch` samples.
  LayerCall(const Declaration& declaration, std::size_t batch, const Context& ctx,
            const Tree<T>& state, Tree<T>* new_state, ConstBuffer<T> output) noexcept
      : declaration_(&declaration), batch_(batch), ctx_(&ctx), state_(state),
        new_state_(new_state), output_(std::move(output)) {}

  /// The per-sample input shape.
  const Shape& input() const noexcept { return declaration_->input; }
  /// The per-sample output shape.
  const Shape& output() const noexcept { return declaration_->output; }
  /// Everything the layer declared for this input shape.
  const Declaration& declaration() const noexcept { return *declaration_; }
  /// Number of samples (columns).
  std::size_t batch() const noexcept { return batch_; }
  /// The call's context (mode, rng, executor, check_finite).
  const Context& context() const noexcept { return *ctx_; }
  /// True in a training forward (Mode::train); false in infer mode and in infer.
  bool training() const noexcept { return ctx_->mode == Mode::train; }
  /// Threads this call may split its work across, or null (see Context::executor).
  Executor* executor() const noexcept { return ctx_->executor; }
  /// The random stream; throws ConfigError when the context has none (set Context::rng).
  Rng& rng() const;
  /// Replaces `values` (partial sums over this call's samples) by their sums over the whole
  /// batch when the batch is split into shards (Context::batch_reduction); does nothing
  /// otherwise. Every shard must make the same calls in the same order.
  void sum_over_batch(arma::Mat<T>& values) const;
  /// The layer's current state tensor `name` (declared by state_specs).
  const arma::Mat<T>& state(std::string_view name) const { return state_[name]; }
  /// Where a training forward writes the new value of state tensor `name`, sized like it;
  /// null outside training (infer mode, or infer).
  arma::Mat<T>* new_state(std::string_view name) const;
  /// The output y as a shared buffer, for a cache that keeps the output (null in infer).
  const ConstBuffer<T>& output_buffer() const noexcept { return output_; }

 private:
  const Declaration* declaration_;
  std::size_t batch_;
  const Context* ctx_;
  Tensors<T> state_;
  Tree<T>* new_state_;
  ConstBuffer<T> output_;
};

/// Where backward writes: dx and the parameter gradients, each already sized, or null when
/// nobody wants it. Work for a null target is work nobody asked for: skip it.
template <class T>
class Gradients {
 public:
  /// Targets in `out` for the given needs (prepared by the framework).
  Gradients(BackwardResult<T>& out, const Needs& needs) noexcept : out_(&out), needs_(&needs) {}

  /// The input gradient (n_in × batch), or null when it is not wanted.
  arma::Mat<T>* dx() const noexcept { return needs_->input ? &out_->dx : nullptr; }
  /// The gradient of parameter `name`, sized like it, or null when it is frozen.
  arma::Mat<T>* param(std::string_view name) const;
  /// Threads backward may split its work across, or null (see Needs::executor).
  Executor* executor() const noexcept { return needs_->executor; }
  /// Scratch space kept in the result across calls (never read by anyone else).
  arma::Mat<T>& workspace() const noexcept { return out_->workspace; }
  /// What was asked of backward.
  const Needs& needs() const noexcept { return *needs_; }
  /// As LayerCall::sum_over_batch, in backward (Needs::batch_reduction).
  void sum_over_batch(arma::Mat<T>& values) const;

 private:
  BackwardResult<T>* out_;
  const Needs* needs_;
};

/// Returns `input` when it holds `n` values per sample; throws ShapeError "expected input (n),
/// got ..." otherwise. For output_shape of layers on feature vectors.
Shape require_size(const Shape& input, std::size_t n);

namespace detail {

// Whether L defines infer_t for element type T.
template <class L, class T, class = void>
struct has_infer : std::false_type {};
template <class L, class T>
struct has_infer<L, T,
                 std::void_t<decltype(std::declval<const L&>().infer_t(
                     std::declval<const Tensors<T>&>(), std::declval<const arma::Mat<T>&>(),
                     std::declval<arma::Mat<T>&>(), std::declval<const LayerCall<T>&>()))>>
    : std::true_type {};

/// Writes the stamp every cache carries (see Cache); for the framework only.
struct CacheStamp {
  /// Records the kind of layer, the call's shapes and its batch size in `cache`.
  static void stamp(Cache& cache, const char* kind, const Declaration& d, std::size_t batch) {
    cache.kind_ = kind;
    cache.input_ = d.input;
    cache.output_ = d.output;
    cache.batch_ = batch;
  }
};

// The checks of the framework (src/layer_impl.cpp), for float and double.
//
// Before forward or infer: the layer's declaration for x_shape, x's rows, the layer's node of
// params and of state, and with check_finite x itself. With `subtree`, every descendant's
// nodes too (a combinator checks its whole subtree before any data flows).
template <class T>
std::shared_ptr<const Declaration> check_call(const Layer& layer, const Tree<T>& params,
                                              const Tree<T>& state, const arma::Mat<T>& x,
                                              const Shape& x_shape, bool check_finite,
                                              bool subtree);
// After forward: with check_finite, the output.
template <class T>
void check_output(const arma::Mat<T>& y, const Context& ctx);
// Sizes `state` like the declared state tensors (reusing its buffers).
template <class T>
void prepare_state(const Declaration& d, Tree<T>& state);
// Before backward: the declaration for the cache's input (CacheError when this layer would
// not have made it), dy against the cache's output (ShapeError), the params node (whole
// subtree with `subtree`), the grads (prepare_grads) and, unless `leave_dx`, dx (sized
// when wanted, else emptied). Returns the declaration.
template <class T>
std::shared_ptr<const Declaration> check_backward(const Layer& layer, const Cache& cache,
                                                  const Tree<T>& params, const arma::Mat<T>& dy,
                                                  const Needs& needs, BackwardResult<T>& out,
                                                  bool subtree, bool leave_dx);
// True when backward has something to compute: dx, or a gradient of a declared tensor.
bool wants_anything(const Declaration& d, const Needs& needs) noexcept;
// Throws the CacheError for a cache that is not `kind`'s own (`same_type`: of the layer's
// cache type but made by another kind of layer).
[[noreturn]] void throw_foreign_cache(const Cache& cache, const char* kind, bool same_type);

// The cache as C, made by a layer of this kind; CacheError otherwise.
template <class C>
const C& own_cache(const Cache& cache, const char* kind) {
  const C* c = dynamic_cast<const C*>(&cache);
  if (c && (cache.kind() == kind || std::strcmp(cache.kind(), kind) == 0)) return *c;
  throw_foreign_cache(cache, kind, c != nullptr);
}

}  // namespace detail

/// Base of a layer's math. Derived provides `kind_name`, `output_shape`, optionally
/// `param_specs` / `state_specs`, and the member templates forward_t, backward_t and infer_t
/// (see the top of this header); `CacheOf<T>` is its cache type. LayerImpl implements the
/// virtual interface of Layer for float and double around them, doing the checks and
/// buffer handling every layer needs.
template <class Derived, template <class> class CacheOf = NoCache>
class LayerImpl : public Layer {
 public:
  /// True for layers whose output is their input read with another shape; Derived
  /// redeclares it as true to be such a layer.
  static constexpr bool passes_input = false;
  /// True for combinators (CombinatorImpl sets it): their forward_t, backward_t and infer_t
  /// receive the whole trees and route them to their children (combinator.hpp).
  static constexpr bool combinator = false;

  /// Derived::kind_name.
  std::string kind() const override { return Derived::kind_name; }

  /// Checks, then Derived::forward_t<float>.
  void forward_into(const Tree<float>& params, const Tree<float>& state,
                    const ConstBuffer<float>& x, const Shape& x_shape, const Context& ctx,
                    ForwardResult<float>& out) const override;
  /// Checks, then Derived::forward_t<double>.
  void forward_into(const Tree<double>& params, const Tree<double>& state,
                    const ConstBuffer<double>& x, const Shape& x_shape, const Context& ctx,
                    ForwardResult<double>& out) const override;
  /// Checks, then Derived::backward_t<float>.
  void backward_into(const Tree<float>& params, const Cache& cache, const arma::Mat<float>& dy,
                     const Needs& needs, BackwardResult<float>& out) const override;
  /// Checks, then Derived::backward_t<double>.
  void backward_into(const Tree<double>& params, const Cache& cache, const arma::Mat<double>& dy,
                     const Needs& needs, BackwardResult<double>& out) const override;
  /// Checks, then Derived::infer_t<float>.
  void infer_into(const Tree<float>& params, const Tree<float>& state, const arma::Mat<float>& x,
                  const Shape& x_shape, arma::Mat<float>& y) const override;
  /// Checks, then Derived::infer_t<double>.
  void infer_into(const Tree<double>& params, const Tree<double>& state,
                  const arma::Mat<double>& x, const Shape& x_shape,
                  arma::Mat<double>& y) const override;

 private:
  const Derived& self() const noexcept { return static_cast<const Derived&>(*this); }
  template <class T>
  void forward_impl(const Tree<T>& params, const Tree<T>& state, const ConstBuffer<T>& x,
                    const Shape& x_shape, const Context& ctx, ForwardResult<T>& out) const;
  template <class T>
  void backward_impl(const Tree<T>& params, const Cache& cache_base, const arma::Mat<T>& dy,
                     const Needs& needs, BackwardResult<T>& out) const;
  template <class T>
  void infer_impl(const Tree<T>& params, const Tree<T>& state, const arma::Mat<T>& x,
                  const Shape& x_shape, arma::Mat<T>& y) const;
};

// The virtual entry points are defined out of the class, so that they are not inline: a
// library layer's are compiled once in src/ (explicit instantiation), a user layer's where it
// is used.

template <class Derived, template <class> class CacheOf>
void LayerImpl<Derived, CacheOf>::forward_into(const Tree<float>& params,
                                               const Tree<float>& state,
                                               const ConstBuffer<float>& x, const Shape& x_shape,
                                               const Context& ctx,
                                               ForwardResult<float>& out) const {
  forward_impl(params, state, x, x_shape, ctx, out);
}

template <class Derived, template <class> class CacheOf>
void LayerImpl<Derived, CacheOf>::forward_into(const Tree<double>& params,
                                               const Tree<double>& state,
                                               const ConstBuffer<double>& x, const Shape& x_shape,
                                               const Context& ctx,
                                               ForwardResult<double>& out) const {
  forward_impl(params, state, x, x_shape, ctx, out);
}

template <class Derived, template <class> class CacheOf>
void LayerImpl<Derived, CacheOf>::backward_into(const Tree<float>& params, const Cache& cache,
                                                const arma::Mat<float>& dy, const Needs& needs,
                                                BackwardResult<float>& out) const {
  backward_impl(params, cache, dy, needs, out);
}

template <class Derived, template <class> class CacheOf>
void LayerImpl<Derived, CacheOf>::backward_into(const Tree<double>& params, const Cache& cache,
                                                const arma::Mat<double>& dy, const Needs& needs,
                                                BackwardResult<double>& out) const {
  backward_impl(params, cache, dy, needs, out);
}

template <class Derived, template <class> class CacheOf>
void LayerImpl<Derived, CacheOf>::infer_into(const Tree<float>& params, const Tree<float>& state,
                                             const arma::Mat<float>& x, const Shape& x_shape,
                                             arma::Mat<float>& y) const {
  infer_impl(params, state, x, x_shape, y);
}

template <class Derived, template <class> class CacheOf>
void LayerImpl<Derived, CacheOf>::infer_into(const Tree<double>& params,
                                             const Tree<double>& state,
                                             const arma::Mat<double>& x, const Shape& x_shape,
                                             arma::Mat<double>& y) const {
  infer_impl(params, state, x, x_shape, y);
}

template <class Derived, template <class> class CacheOf>
template <class T>
void LayerImpl<Derived, CacheOf>::forward_impl(const Tree<T>& params, const Tree<T>& state,
                                               const ConstBuffer<T>& x, const Shape& x_shape,
                                               const Context& ctx, ForwardResult<T>& out) const {
  // A combinator's whole subtree is checked before any data flows. Its input is checked for
  // NaN by the first layer that reads it (so the innermost first layer is named), its output
  // below (a merge can overflow).
  const auto d = detail::check_call(*this, params, state, *x, x_shape,
                                    ctx.check_finite && !Derived::combinator,
                                    Derived::combinator);
  auto& cache = out.template reuse_cache<CacheOf<T>>();
  detail::CacheStamp::stamp(cache, Derived::kind_name, *d, x->n_cols);
  if constexpr (Derived::combinator) {
    const LayerCall<T> call(*d, x->n_cols, ctx, state, nullptr, nullptr);
    self().forward_t(params, state, x, call, cache, out);
  } else if constexpr (Derived::passes_input) {
    out.output = x;  // aliased, not copied
  } else {
    const bool new_state = ctx.mode == Mode::train && !d->state.empty();
    if (new_state)
      detail::prepare_state(*d, out.state);
    else if (!out.state.empty())
      out.state = Tree<T>();
    arma::Mat<T>& y = out.write_output(d->output.size(), x->n_cols);
    const LayerCall<T> call(*d, x->n_cols, ctx, state, new_state ? &out.state : nullptr,
                            out.output);
    self().forward_t(Tensors<T>(params), x, y, cache, call);
  }
  out.shape = d->output;
  detail::check_output(*out.output, ctx);
}

template <class Derived, template <class> class CacheOf>
template <class T>
void LayerImpl<Derived, CacheOf>::backward_impl(const Tree<T>& params, const Cache& cache_base,
                                                const arma::Mat<T>& dy, const Needs& needs,
                                                BackwardResult<T>& out) const {
  const auto& cache = detail::own_cache<CacheOf<T>>(cache_base, Derived::kind_name);
  // A combinator sets dx itself (its children's), and checks its whole subtree of params.
  const auto d = detail::check_backward(*this, cache, params, dy, needs, out,
                                        Derived::combinator, Derived::combinator);
  if constexpr (Derived::combinator) {
    self().backward_t(params, cache, dy, needs, out);
    if (!needs.input) out.dx.reset();
  } else {
    if (!detail::wants_anything(*d, needs)) return;
    if constexpr (Derived::passes_input) {
      out.dx = dy;
    } else {
      Gradients<T> grads(out, needs);
      self().backward_t(Tensors<T>(params), cache, dy, grads);
    }
  }
}

template <class Derived, template <class> class CacheOf>
template <class T>
void LayerImpl<Derived, CacheOf>::infer_impl(const Tree<T>& params, const Tree<T>& state,
                                             const arma::Mat<T>& x, const Shape& x_shape,
                                             arma::Mat<T>& y) const {
  static const Context infer_context{Mode::infer, nullptr, false, nullptr, nullptr};
  const auto d = detail::check_call(*this, params, state, x, x_shape, false, Derived::combinator);
  if constexpr (Derived::combinator) {
    const LayerCall<T> call(*d, x.n_cols, infer_context, state, nullptr, nullptr);
    self().infer_t(params, state, x, call, y);
  } else if constexpr (Derived::passes_input) {
    if (&y != &x) y = x;
  } else if constexpr (detail::has_infer<Derived, T>::value) {
    y.set_size(d->output.size(), x.n_cols);
    const LayerCall<T> call(*d, x.n_cols, infer_context, state, nullptr, nullptr);
    self().infer_t(Tensors<T>(params), x, y, call);
  } else {
    // forward_t into a cache that is dropped; x and y are lent to it without a copy (shared
    // pointers that own nothing).
    y.set_size(d->output.size(), x.n_cols);
    const ConstBuffer<T> x_lent(std::shared_ptr<const arma::Mat<T>>(), &x);
    const ConstBuffer<T> y_lent(std::shared_ptr<const arma::Mat<T>>(), &y);
    const LayerCall<T> call(*d, x.n_cols, infer_context, state, nullptr, y_lent);
    CacheOf<T> dropped;
    self().forward_t(Tensors<T>(params), x_lent, y, dropped, call);
  }
}

extern template class Tensors<float>;
extern template class Tensors<double>;
extern template class LayerCall<float>;
extern template class LayerCall<double>;
extern template class Gradients<float>;
extern template class Gradients<double>;

}  // namespace layercache
