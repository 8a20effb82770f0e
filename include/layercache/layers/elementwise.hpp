// ElementwiseLayer: the base of activations, y = f(x) entry by entry (docs/custom_layer.md).
//
// An activation is its math and nothing else; the forward and backward formulas sit side by
// side:
//
//   class Swish : public ElementwiseLayer<Swish> {
//    public:
//     static constexpr const char* kind_name = "swish";
//     static constexpr Keeps keeps = Keeps::input;     // backward reads x (or Keeps::output: y)
//     template <class T> T apply(T x) const { return x / (T(1) + std::exp(-x)); }
//     template <class T> T input_gradient(T x, T dy) const {  // dy · f'(x)
//       const T s = T(1) / (T(1) + std::exp(-x));
//       return dy * s * (T(1) + x * (T(1) - s));
//     }
//   };
//
// Any input shape is accepted and the output has the same shape. The cache keeps the one
// tensor the formula of input_gradient reads (x or y, shared with a neighbour, never copied).
// An activation whose backward formula depends on a hyper-parameter (LeakyReLU's slope) also
// defines `double parameter() const` and `static constexpr const char* parameter_name`: the
// value is recorded in the cache, and a cache made with another value is a CacheError.
// The loops run over whole columns, split across Context::executor's threads for large
// batches; apply and input_gradient must not throw.
#pragma once

#include <string>
#include <type_traits>

#include "layercache/layer_impl.hpp"

namespace layercache {

/// Which tensor a layer's cache keeps for backward: its input x or its output y.
enum class Keeps { input, output };

/// What a layer keeps when its backward needs one tensor, its input or its output (the
/// activations, Softmax, LogSoftmax).
template <class T>
struct OneTensorCache : Cache {
  /// The input x or the output y (n × batch), as the layer's `keeps` says; shared with the
  /// neighbouring layer that holds the same buffer.
  ConstBuffer<T> kept;
  /// The hyper-parameter the layer's backward formula reads, as recorded in forward (0 for
  /// layers without one).
  double parameter = 0;

  /// The kept tensor's buffer.
  void for_each_buffer(const BufferVisitor& f) const override { visit_buffer(kept, f); }
};

namespace detail {

// Calls f(first, count) over the columns [0, n) in one range per thread of `executor` when
// there are at least `min_entries` entries to share, else once for all columns.
template <class F>
void by_column_ranges(Executor* executor, std::size_t n, std::size_t rows, F&& f) {
  constexpr double min_entries = 16e3;  // an element-wise pass this long pays for the threads
  if (!executor || executor->size() < 2 || double(n) * double(rows) < min_entries) {
    f(std::size_t(0), n);
    return;
  }
  struct Job {
    F* f;
    std::size_t n, tasks;
  } job{&f, n, executor->size()};
  executor->run(
      [](void* context, std::size_t i) {
        const Job& j = *static_cast<const Job*>(context);
        const std::size_t first = j.n * i / j.tasks, last = j.n * (i + 1) / j.tasks;
        if (last > first) (*j.f)(first, last - first);
      },
      &job);
}

template <class L, class = void>
struct has_parameter : std::false_type {};
template <class L>
struct has_parameter<L, std::void_t<decltype(std::declval<const L&>().parameter())>>
    : std::true_type {};

// Throws the CacheError of a cache made with another value of the layer's hyper-parameter.
[[noreturn]] void throw_other_parameter(const char* name, double layer, double cache);

}  // namespace detail

/// Base of the element-wise layers: Derived provides `kind_name`, `keeps`, and the member
/// templates `apply(x)` (y) and `input_gradient(kept, dy)` (dx, given the kept x or y).
template <class Derived>
class ElementwiseLayer : public LayerImpl<Derived, OneTensorCache> {
 public:
  /// Any shape is accepted; the output has the same shape.
  Shape output_shape(const Shape& input) const override { return input; }

  /// y = apply(x) entry by entry; the cache keeps x or y (see LayerImpl).
  template <class T>
  void forward_t(const Tensors<T>& /*params*/, const ConstBuffer<T>& x, arma::Mat<T>& y,
                 OneTensorCache<T>& cache, const LayerCall<T>& call) const {
    map(call.executor(), *x, y);
    if constexpr (Derived::keeps == Keeps::output)
      cache.kept = call.output_buffer();  // shared with the next layer, which reads it
    else
      cache.kept = x;  // shared with the previous layer's output
    if constexpr (detail::has_parameter<Derived>::value) cache.parameter = self().parameter();
  }

  /// dx = input_gradient(kept, dy) entry by entry (see LayerImpl).
  template <class T>
  void backward_t(const Tensors<T>& /*params*/, const OneTensorCache<T>& cache,
                  const arma::Mat<T>& dy, Gradients<T>& grads) const {
    if constexpr (detail::has_parameter<Derived>::value)
      if (cache.parameter != self().parameter())
        detail::throw_other_parameter(Derived::parameter_name, self().parameter(),
                                      cache.parameter);
    if (!cache.kept || cache.kept->n_rows != dy.n_rows || cache.kept->n_cols != dy.n_cols)
      throw CacheError(std::string("the ") + cache.kind() + " cache holds no " +
                       (Derived::keeps == Keeps::output ? "output" : "input") +
                       " of dy's shape; pass backward the cache that forward returned");
    const T* kept = cache.kept->memptr();
    const T* g = dy.memptr();
    T* dx = grads.dx()->memptr();  // LayerImpl calls backward only when dx is wanted
    const std::size_t rows = dy.n_rows;
    const Derived& math = self();
    detail::by_column_ranges(grads.executor(), dy.n_cols, rows,
                             [&](std::size_t first, std::size_t count) noexcept {
                               const std::size_t begin = first * rows, end = begin + count * rows;
                               for (std::size_t i = begin; i < end; ++i)
                                 dx[i] = math.input_gradient(kept[i], g[i]);
                             });
  }

  /// y = apply(x) entry by entry (see LayerImpl).
  template <class T>
  void infer_t(const Tensors<T>& /*params*/, const arma::Mat<T>& x, arma::Mat<T>& y,
               const LayerCall<T>& /*call*/) const {
    map(nullptr, x, y);
  }

 private:
  const Derived& self() const noexcept { return static_cast<const Derived&>(*this); }

  template <class T>
  void map(Executor* executor, const arma::Mat<T>& x, arma::Mat<T>& y) const {
    const T* in = x.memptr();
    T* out = y.memptr();
    const std::size_t rows = x.n_rows;
    const Derived& math = self();
    detail::by_column_ranges(executor, x.n_cols, rows,
                             [&](std::size_t first, std::size_t count) noexcept {
                               const std::size_t begin = first * rows, end = begin + count * rows;
                               for (std::size_t i = begin; i < end; ++i) out[i] = math.apply(in[i]);
                             });
  }
};

}  // namespace layercache
