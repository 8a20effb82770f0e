// C = op(A) · op(B) + beta · C with the BLAS on raw column-major blocks (internal), for layers
// that multiply parts of matrices (row blocks, channel groups) without copying them out.
#pragma once

#include <armadillo>
#include <cstddef>

namespace layercache::detail {

/// C (m × n, leading dimension ldc) = op(A) · op(B) + beta · C, op = transpose for 'T'.
/// Does nothing when m or n is 0.
template <class T>
void gemm(char trans_a, char trans_b, std::size_t m, std::size_t n, std::size_t k, const T* a,
          std::size_t lda, const T* b, std::size_t ldb, T* c, std::size_t ldc,
          T beta = T(0)) noexcept {
  if (m == 0 || n == 0) return;
  const arma::blas_int bm = arma::blas_int(m), bn = arma::blas_int(n), bk = arma::blas_int(k),
                       blda = arma::blas_int(lda), bldb = arma::blas_int(ldb),
                       bldc = arma::blas_int(ldc);
  const T one = 1;
  arma::blas::gemm<T>(&trans_a, &trans_b, &bm, &bn, &bk, &one, a, &blda, b, &bldb, &beta, c,
                      &bldc);
}

}  // namespace layercache::detail
