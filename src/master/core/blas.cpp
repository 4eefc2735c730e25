#include "master/core/blas.h"

#include <dnnl.h>
#include <omp.h>

#include <stdexcept>
#include <string>

namespace tempo::blas {

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          const float* b, float beta, float* c, int64_t lda, int64_t ldb, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (lda < 0) lda = trans_a ? m : k;
  if (ldb < 0) ldb = trans_b ? k : n;
  if (ldc < 0) ldc = n;
  const dnnl_status_t st = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, alpha, a,
                                      lda, b, ldb, beta, c, ldc);
  if (st != dnnl_success)
    throw std::runtime_error("gemm: oneDNN sgemm failed (status " + std::to_string(st) + ") for " +
                             std::to_string(m) + "x" + std::to_string(n) + "x" + std::to_string(k));
}

void set_num_threads(int threads) {
  if (threads <= 0) return;
  omp_set_num_threads(threads);
}

int num_threads() { return omp_get_max_threads(); }

}  // namespace tempo::blas
