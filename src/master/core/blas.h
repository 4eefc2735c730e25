// Thin row-major wrappers over CBLAS (OpenBLAS), the only BLAS entry points the engine uses.
#pragma once

#include <cstdint>

namespace tempo::blas {

/// C[m,n] = alpha · op(A) · op(B) + beta · C, row-major; op(A) is m×k, op(B) is k×n.
/// lda/ldb/ldc default to the dense leading dimensions.
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          const float* b, float beta, float* c, int64_t lda = -1, int64_t ldb = -1,
          int64_t ldc = -1);

/// Sets the thread count of OpenBLAS and OpenMP together.
void set_num_threads(int threads);
int num_threads();

}  // namespace tempo::blas
