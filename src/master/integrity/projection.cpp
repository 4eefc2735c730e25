#include "master/integrity/projection.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <omp.h>

#include "master/core/simd.h"
#include "master/crypto/row_projection.h"

namespace tempo::integrity {

namespace {

// Up to 4 rounds at a time: T+1 double accumulators per row stay in registers.
template <int T>
inline void project_row(const float* m, int64_t R, int64_t K, const double* x, const double* x_abs,
                        bool with_abs, double* out, double* out_abs, int64_t i) {
  const float* row = m + i * K;
  int r = 0;
  if (with_abs) {
    crypto::row_sum_and_abs<true>(row, x, x_abs, K, &out[i], &out_abs[i]);
    r = 1;
  }
  for (; r < T; ++r) out[r * R + i] = crypto::row_sum<false, true>(row, x + r * K, K);
}

// Serial unless worth threads. Never `omp parallel for if (false)`: a one-thread region costs
// about a microsecond, as much as projecting one attention head.
template <int T>
void project_rows(const float* m, int64_t R, int64_t K, const double* x, const double* x_abs,
                  bool with_abs, double* out, double* out_abs, bool parallel) {
  if (parallel && R * K >= kParallelElements && !omp_in_parallel()) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < R; ++i) project_row<T>(m, R, K, x, x_abs, with_abs, out, out_abs, i);
  } else {
    for (int64_t i = 0; i < R; ++i) project_row<T>(m, R, K, x, x_abs, with_abs, out, out_abs, i);
  }
}

// op(M) = M^T with M stored [K, R]: each block of outputs streams all K rows.
constexpr int64_t kBlock = 512;

template <int T>
[[gnu::always_inline]] inline void project_block(const float* m, int64_t R, int64_t K,
                                                 const double* x, const double* x_abs,
                                                 bool with_abs, double* out, double* out_abs,
                                                 int64_t b) {
  const int64_t i0 = b * kBlock, n = std::min(kBlock, R - i0);
  double acc[T][kBlock];
  double acc_abs[kBlock];
  for (int r = 0; r < T; ++r) std::fill(acc[r], acc[r] + n, 0.0);
  std::fill(acc_abs, acc_abs + n, 0.0);
  for (int64_t j = 0; j < K; ++j) {
    const float* row = m + j * R + i0;
    int r = 0;
    if (with_abs) {
      // The absolute values and the first round in one pass over the row's block.
      const double xa = x_abs[j], x0 = x[j];
      double* a0 = acc[0];
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) {
        const double d = row[i];
        acc_abs[i] += std::fabs(d) * xa;
        a0[i] += d * x0;
      }
      r = 1;
    }
    for (; r < T; ++r) {
      const double xr = x[r * K + j];
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) acc[r][i] += static_cast<double>(row[i]) * xr;
    }
  }
  for (int r = 0; r < T; ++r) std::copy(acc[r], acc[r] + n, out + r * R + i0);
  if (with_abs) std::copy(acc_abs, acc_abs + n, out_abs + i0);
}

// The same loops vectorised 512 bits wide (plain loops, no vector types: inlined into an AVX-512
// function, they are vectorised for it).
template <int T>
TEMPO_TARGET_AVX512 void project_block_avx512(const float* m, int64_t R, int64_t K, const double* x,
                                              const double* x_abs, bool with_abs, double* out,
                                              double* out_abs, int64_t b) {
  project_block<T>(m, R, K, x, x_abs, with_abs, out, out_abs, b);
}

template <int T>
void project_block_any(const float* m, int64_t R, int64_t K, const double* x, const double* x_abs,
                       bool with_abs, double* out, double* out_abs, int64_t b) {
  if (simd::avx512())
    project_block_avx512<T>(m, R, K, x, x_abs, with_abs, out, out_abs, b);
  else
    project_block<T>(m, R, K, x, x_abs, with_abs, out, out_abs, b);
}

// Each thread owns a block of outputs and streams all K rows.
template <int T>
void project_cols(const float* m, int64_t R, int64_t K, const double* x, const double* x_abs,
                  bool with_abs, double* out, double* out_abs, bool parallel) {
  const int64_t blocks = (R + kBlock - 1) / kBlock;
  if (parallel && R * K >= kParallelElements && blocks > 1 && !omp_in_parallel()) {
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < blocks; ++b)
      project_block_any<T>(m, R, K, x, x_abs, with_abs, out, out_abs, b);
  } else {
    for (int64_t b = 0; b < blocks; ++b)
      project_block_any<T>(m, R, K, x, x_abs, with_abs, out, out_abs, b);
  }
}

template <int T>
void project_t(const float* m, int64_t R, int64_t K, bool trans, const double* x,
               const double* x_abs, bool with_abs, double* out, double* out_abs, bool parallel) {
  if (trans)
    project_cols<T>(m, R, K, x, x_abs, with_abs, out, out_abs, parallel);
  else
    project_rows<T>(m, R, K, x, x_abs, with_abs, out, out_abs, parallel);
}

}  // namespace

void project(const float* m, int64_t rows, int64_t cols, bool trans, const double* x,
             const double* x_abs, int rounds, double* out, double* out_abs, bool parallel) {
  const int64_t R = trans ? cols : rows, K = trans ? rows : cols;
  for (int r0 = 0; r0 < rounds; r0 += 4) {
    const int t = std::min(4, rounds - r0);
    const bool with_abs = r0 == 0;
    const double* xr = x + r0 * K;
    double* o = out + r0 * R;
    switch (t) {
      case 1:
        project_t<1>(m, R, K, trans, xr, x_abs, with_abs, o, out_abs, parallel);
        break;
      case 2:
        project_t<2>(m, R, K, trans, xr, x_abs, with_abs, o, out_abs, parallel);
        break;
      case 3:
        project_t<3>(m, R, K, trans, xr, x_abs, with_abs, o, out_abs, parallel);
        break;
      default:
        project_t<4>(m, R, K, trans, xr, x_abs, with_abs, o, out_abs, parallel);
        break;
    }
  }
}

}  // namespace tempo::integrity
