// The engine's only GEMM entry point: row-major, over oneDNN's sgemm. oneDNN rather than OpenBLAS
// because its JIT kernels use the CPU's widest vectors (AVX-512 where present, which Debian's
// OpenBLAS 0.3.21 does not on AMD Zen 4): 1.6-3.5x faster on this project's shapes, measured
// side by side (docs/notes/gemm-library.md). Inside an OpenMP parallel region it runs on the
// calling thread.
#pragma once

#include <cstdint>

namespace tempo::blas {

/// C[m,n] = alpha · op(A) · op(B) + beta · C, row-major; op(A) is m×k, op(B) is k×n.
/// lda/ldb/ldc default to the dense leading dimensions.
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          const float* b, float beta, float* c, int64_t lda = -1, int64_t ldb = -1,
          int64_t ldc = -1);

/// Sets the OpenMP thread count (which oneDNN follows).
void set_num_threads(int threads);
int num_threads();

}  // namespace tempo::blas
