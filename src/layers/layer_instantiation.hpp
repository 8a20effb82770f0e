// Explicit instantiation of a layer's forward_t, backward_t and infer_t for float and double.
// Each layer's .cpp ends with LAYERCACHE_INSTANTIATE_LAYER(ClassName).
#pragma once

#define LAYERCACHE_INSTANTIATE_LAYER_T(L, T)                                                 \
  template void L::forward_t(const Tree<T>&, const Tree<T>&, const ConstBuffer<T>&,          \
                             const Shape&, const Context&, ForwardResult<T>&) const;         \
  template void L::backward_t(const Tree<T>&, const Cache&, const arma::Mat<T>&,             \
                              const Needs&, BackwardResult<T>&) const;                       \
  template void L::infer_t(const Tree<T>&, const Tree<T>&, const arma::Mat<T>&,              \
                           const Shape&, arma::Mat<T>&) const;

#define LAYERCACHE_INSTANTIATE_LAYER(L) \
  LAYERCACHE_INSTANTIATE_LAYER_T(L, float) \
  LAYERCACHE_INSTANTIATE_LAYER_T(L, double)
