// Identity: the output is the input buffer itself; backward copies dy into dx.
#include "layercache/layers/identity.hpp"

#include <algorithm>

#include "activation_base.hpp"

namespace layercache {

template <class T>
void Identity::forward_t(const Tree<T>&, const Tree<T>&, const ConstBuffer<T>& x,
                         const Shape& x_shape, const Context&, ForwardResult<T>& out) const {
  check_rows(x->n_rows, x_shape);
  out.output = x;  // aliased, not copied
  out.shape = x_shape;
  auto& cache = out.template reuse_cache<IdentityCache<T>>();
  cache.rows = x->n_rows;
  cache.cols = x->n_cols;
}

template <class T>
void Identity::backward_t(const Tree<T>&, const Cache& cache_base, const arma::Mat<T>& dy,
                          const Needs& needs, BackwardResult<T>& out) const {
  const auto& cache = activation_detail::own_cache<IdentityCache<T>>(cache_base, *this);
  activation_detail::check_dy(dy, cache.rows, cache.cols);
  if (!needs.input) {
    out.dx.reset();
    return;
  }
  out.dx.set_size(dy.n_rows, dy.n_cols);
  std::copy(dy.memptr(), dy.memptr() + dy.n_elem, out.dx.memptr());
}

template <class T>
void Identity::infer_t(const Tree<T>&, const Tree<T>&, const arma::Mat<T>& x,
                       const Shape& x_shape, arma::Mat<T>& y) const {
  check_rows(x.n_rows, x_shape);
  if (&y == &x) return;
  y.set_size(x.n_rows, x.n_cols);
  std::copy(x.memptr(), x.memptr() + x.n_elem, y.memptr());
}

LAYERCACHE_INSTANTIATE_LAYER(Identity)

}  // namespace layercache
