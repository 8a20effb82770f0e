// Layers that change how a batch is read, never its values (Identity, Flatten, Reshape):
// the output is the input buffer itself, read with the layer's output shape, and backward
// passes dy through. One mechanism; each layer only says which output shape it gives.
#pragma once

#include <cstddef>
#include <functional>
#include <string>

#include "layercache/layer.hpp"

namespace layercache {

/// What a pass-through layer keeps for backward: no tensor, only the size of its input, so a
/// dy of the wrong shape is still rejected. Cache::bytes() is 0. `Owner` (the layer class)
/// makes the caches of different pass-through layers distinct types.
template <class T, class Owner>
struct PassThroughCache : Cache {
  std::size_t rows = 0;   ///< rows of the input (the per-sample size)
  std::size_t batch = 0;  ///< columns of the input

  const char* kind() const noexcept override { return Owner::name; }
  void for_each_buffer(const std::function<void(const void*, std::size_t)>&) const override {}
};

/// Base of layers whose output aliases their input:
///   forward:  y = x            (same memory; only the per-sample shape may change)
///   backward: dx = dy
/// Derived provides `output_shape` and `static constexpr const char* name`.
template <class Derived>
class PassThroughLayer : public LayerImpl<Derived> {
 public:
  /// The layer's kind: Derived::name.
  std::string kind() const override { return Derived::name; }

  /// See LayerImpl.
  template <class T>
  void forward_t(const Tree<T>&, const Tree<T>&, const ConstBuffer<T>& x, const Shape& x_shape,
                 const Context&, ForwardResult<T>& out) const {
    out.shape = this->output_shape(x_shape);
    check_rows(x->n_rows, x_shape);
    out.output = x;  // aliased, not copied
    auto& cache = out.template reuse_cache<PassThroughCache<T, Derived>>();
    cache.rows = x->n_rows;
    cache.batch = x->n_cols;
  }

  /// See LayerImpl.
  template <class T>
  void backward_t(const Tree<T>&, const Cache& cache_base, const arma::Mat<T>& dy,
                  const Needs& needs, BackwardResult<T>& out) const {
    const auto& cache = cache_as<PassThroughCache<T, Derived>>(cache_base, Derived::name);
    if (dy.n_rows != cache.rows || dy.n_cols != cache.batch)
      throw ShapeError("expected dy (" + std::to_string(cache.rows) + " × " +
                       std::to_string(cache.batch) + ") (the shape of this layer's output), got (" +
                       std::to_string(dy.n_rows) + " × " + std::to_string(dy.n_cols) + ")");
    if (needs.input)
      out.dx = dy;
    else
      out.dx.reset();
  }

  /// See LayerImpl.
  template <class T>
  void infer_t(const Tree<T>&, const Tree<T>&, const arma::Mat<T>& x, const Shape& x_shape,
               arma::Mat<T>& y) const {
    this->output_shape(x_shape);
    check_rows(x.n_rows, x_shape);
    if (&y != &x) y = x;
  }
};

}  // namespace layercache
