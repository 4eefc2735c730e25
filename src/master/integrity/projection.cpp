#include "master/integrity/projection.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <vector>

#include <immintrin.h>
#include <omp.h>

#include "master/core/avx512_lanes.h"
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

// Rows of at most this many floats are projected 8 rows at a time on AVX-512: one vector of
// partial sums per row, the 8 reduced together, instead of a horizontal sum per row, which for
// attention heads' 16-float rows cost more than the products.
constexpr int64_t kShortRowFloats = 32;

// out[i] = Σ_j M[i][j]·x[j], out_abs[i] = Σ_j |M[i][j]|·x_abs[j] for rows [begin, end) (a
// multiple of 8 of them) of K <= 8·kChunks floats.
template <int kChunks>
TEMPO_TARGET_AVX512 void project_short_rows(const float* m, int64_t K, const double* x,
                                            const double* x_abs, double* out, double* out_abs,
                                            int64_t begin, int64_t end) {
  __mmask8 mask[kChunks];
  __m512d w[kChunks], w_abs[kChunks];
  for (int c = 0; c < kChunks; ++c) {
    const int64_t left = K - 8 * c;
    mask[c] = simd::tail_mask8(left);
    w[c] = _mm512_maskz_loadu_pd(mask[c], x + 8 * c);
    w_abs[c] = _mm512_maskz_loadu_pd(mask[c], x_abs + 8 * c);
  }
  for (int64_t i = begin; i < end; i += 8) {
    __m512d sums[8], magnitudes[8];
    for (int k = 0; k < 8; ++k) {
      const float* row = m + (i + k) * K;
      __m512d s = _mm512_setzero_pd(), a = _mm512_setzero_pd();
      for (int c = 0; c < kChunks; ++c) {
        // The zero-masking conversion: GCC 12 warns of the plain one's undefined source.
        const __m512d d =
            _mm512_maskz_cvtps_pd(__mmask8{0xFF}, _mm256_maskz_loadu_ps(mask[c], row + 8 * c));
        s = _mm512_fmadd_pd(d, w[c], s);
        a = _mm512_fmadd_pd(_mm512_abs_pd(d), w_abs[c], a);
      }
      sums[k] = s;
      magnitudes[k] = a;
    }
    _mm512_storeu_pd(out + i, simd::sum_lanes8(sums));
    _mm512_storeu_pd(out_abs + i, simd::sum_lanes8(magnitudes));
  }
}

// Rows [begin, end): the first round and the absolute values of whole tiles of 8 short rows by
// project_short_rows, everything else row by row.
template <int T>
void project_row_range(const float* m, int64_t R, int64_t K, const double* x, const double* x_abs,
                       bool with_abs, double* out, double* out_abs, int64_t begin, int64_t end) {
  int64_t i = begin;
  if (with_abs && K >= 1 && K <= kShortRowFloats && end - begin >= 8 && simd::avx512()) {
    const int64_t tiles_end = begin + (end - begin) / 8 * 8;
    switch ((K + 7) / 8) {
      case 1:
        project_short_rows<1>(m, K, x, x_abs, out, out_abs, begin, tiles_end);
        break;
      case 2:
        project_short_rows<2>(m, K, x, x_abs, out, out_abs, begin, tiles_end);
        break;
      case 3:
        project_short_rows<3>(m, K, x, x_abs, out, out_abs, begin, tiles_end);
        break;
      default:
        project_short_rows<4>(m, K, x, x_abs, out, out_abs, begin, tiles_end);
        break;
    }
    for (int r = 1; r < T; ++r)
      for (int64_t row = begin; row < tiles_end; ++row)
        out[r * R + row] = crypto::row_sum<false, true>(m + row * K, x + r * K, K);
    i = tiles_end;
  }
  for (; i < end; ++i) project_row<T>(m, R, K, x, x_abs, with_abs, out, out_abs, i);
}

// Serial unless worth threads. Never `omp parallel for if (false)`: a one-thread region costs
// about a microsecond, as much as projecting one attention head.
template <int T>
void project_rows(const float* m, int64_t R, int64_t K, const double* x, const double* x_abs,
                  bool with_abs, double* out, double* out_abs, bool parallel) {
  if (parallel && R * K >= kParallelElements && !omp_in_parallel()) {
#pragma omp parallel
    {
      // Whole tiles of 8 rows per thread.
      const int64_t threads = omp_get_num_threads(), t = omp_get_thread_num();
      const int64_t chunk = ((R + threads - 1) / threads + 7) / 8 * 8;
      project_row_range<T>(m, R, K, x, x_abs, with_abs, out, out_abs, std::min(R, t * chunk),
                           std::min(R, (t + 1) * chunk));
    }
  } else {
    project_row_range<T>(m, R, K, x, x_abs, with_abs, out, out_abs, 0, R);
  }
}

// op(M) = M^T with M stored [K, R]: each block of outputs streams all K rows.
constexpr int64_t kBlock = 512;

// Block b of the outputs over rows [j0, j1) of M.
template <int T>
[[gnu::always_inline]] inline void project_block(const float* m, int64_t R, const double* x,
                                                 const double* x_abs, bool with_abs, double* out,
                                                 double* out_abs, int64_t b, int64_t j0, int64_t j1,
                                                 int64_t K) {
  const int64_t i0 = b * kBlock, n = std::min(kBlock, R - i0);
  double acc[T][kBlock];
  double acc_abs[kBlock];
  for (int r = 0; r < T; ++r) std::fill(acc[r], acc[r] + n, 0.0);
  std::fill(acc_abs, acc_abs + n, 0.0);
  for (int64_t j = j0; j < j1; ++j) {
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
TEMPO_TARGET_AVX512 void project_block_avx512(const float* m, int64_t R, const double* x,
                                              const double* x_abs, bool with_abs, double* out,
                                              double* out_abs, int64_t b, int64_t j0, int64_t j1,
                                              int64_t K) {
  project_block<T>(m, R, x, x_abs, with_abs, out, out_abs, b, j0, j1, K);
}

template <int T>
void project_block_any(const float* m, int64_t R, const double* x, const double* x_abs,
                       bool with_abs, double* out, double* out_abs, int64_t b, int64_t j0,
                       int64_t j1, int64_t K) {
  if (simd::avx512())
    project_block_avx512<T>(m, R, x, x_abs, with_abs, out, out_abs, b, j0, j1, K);
  else
    project_block<T>(m, R, x, x_abs, with_abs, out, out_abs, b, j0, j1, K);
}

// Threads own blocks of outputs and stream all K rows; with fewer blocks than threads (narrow
// matrices: a Linear layer's X' of 64-256 columns is one block) they split the rows instead and
// their partial sums are added in double, in thread order (the same bound: only the order of
// the double additions changes).
template <int T>
void project_cols(const float* m, int64_t R, int64_t K, const double* x, const double* x_abs,
                  bool with_abs, double* out, double* out_abs, bool parallel) {
  const int64_t blocks = (R + kBlock - 1) / kBlock;
  const bool threaded = parallel && R * K >= kParallelElements && !omp_in_parallel();
  const int threads = threaded ? omp_get_max_threads() : 1;
  if (threaded && blocks >= threads) {
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < blocks; ++b)
      project_block_any<T>(m, R, x, x_abs, with_abs, out, out_abs, b, 0, K, K);
  } else if (threaded && threads > 1) {
    const int64_t width = (T + 1) * R;  // a thread's sums: [T][R], then the absolute [R]
    std::vector<double> partial(static_cast<size_t>(threads * width), 0.0);
#pragma omp parallel num_threads(threads)
    {
      const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
      const int64_t rows = (K + nt - 1) / nt, j0 = std::min(K, t * rows),
                    j1 = std::min(K, j0 + rows);
      double* sums = partial.data() + t * width;
      for (int64_t b = 0; b < blocks && j0 < j1; ++b)
        project_block_any<T>(m, R, x, x_abs, with_abs, sums, sums + T * R, b, j0, j1, K);
    }
    for (int64_t i = 0; i < T * R; ++i) {
      double sum = 0.0;
      for (int t = 0; t < threads; ++t) sum += partial[static_cast<size_t>(t * width + i)];
      out[i] = sum;
    }
    if (with_abs)
      for (int64_t i = 0; i < R; ++i) {
        double sum = 0.0;
        for (int t = 0; t < threads; ++t)
          sum += partial[static_cast<size_t>(t * width + T * R + i)];
        out_abs[i] = sum;
      }
  } else {
    for (int64_t b = 0; b < blocks; ++b)
      project_block_any<T>(m, R, x, x_abs, with_abs, out, out_abs, b, 0, K, K);
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

// a[0..16) += f's lanes widened (exactly) to double, for the lanes in `mask`. (A function, not a
// lambda: a lambda does not inherit its enclosing function's target attribute.)
TEMPO_TARGET_AVX512 inline void add_widened(__m512 f, __mmask16 mask, double* a) {
  const __mmask8 low_mask = static_cast<__mmask8>(mask & 0xFF);
  const __mmask8 high_mask = static_cast<__mmask8>(mask >> 8);
  const __m512d low = _mm512_maskz_cvtps_pd(0xFF, _mm512_maskz_extractf32x8_ps(0xFF, f, 0));
  const __m512d high = _mm512_maskz_cvtps_pd(0xFF, _mm512_maskz_extractf32x8_ps(0xFF, f, 1));
  _mm512_mask_storeu_pd(a, low_mask, _mm512_add_pd(_mm512_maskz_loadu_pd(low_mask, a), low));
  _mm512_mask_storeu_pd(a + 8, high_mask,
                        _mm512_add_pd(_mm512_maskz_loadu_pd(high_mask, a + 8), high));
}

// op(M) = M^T on sign vectors: the block's sums in fp32 over chunks of at most `chunk` rows of
// M, each chunk's sums then added in double; a term goes through at most `chunk` fp32 roundings
// (project_signs picks chunk <= ceil(K/16) + 4, inside projection_relative_bound(K)).
constexpr int64_t kSignBlock = 256;  // outputs per block

TEMPO_TARGET_AVX512 void project_sign_block_avx512(const float* m, int64_t R, int64_t K,
                                                   const double* x, int rounds, double* out,
                                                   double* out_abs, int64_t b, int64_t chunk) {
  const int64_t i0 = b * kSignBlock, n = std::min(kSignBlock, R - i0);
  const int64_t vecs = (n + 15) / 16;
  for (int r = 0; r < rounds; ++r) {
    const bool with_abs = r == 0;
    double acc[kSignBlock], acc_abs[kSignBlock];
    std::fill(acc, acc + n, 0.0);
    std::fill(acc_abs, acc_abs + n, 0.0);
    const double* xr = x + r * K;
    for (int64_t j0 = 0; j0 < K; j0 += chunk) {
      const int64_t j1 = std::min(K, j0 + chunk);
      for (int64_t q = 0; q < vecs; ++q) {
        const int64_t left = n - 16 * q;
        const __mmask16 mask = simd::tail_mask16(left);
        __m512 sum = _mm512_setzero_ps(), mag = _mm512_setzero_ps();
        for (int64_t j = j0; j < j1; ++j) {
          const __m512 v = _mm512_maskz_loadu_ps(mask, m + j * R + i0 + 16 * q);
          sum = _mm512_fmadd_ps(v, _mm512_set1_ps(static_cast<float>(xr[j])), sum);
          if (with_abs) mag = _mm512_add_ps(simd::magnitude(v), mag);
        }
        add_widened(sum, mask, acc + 16 * q);
        if (with_abs) add_widened(mag, mask, acc_abs + 16 * q);
      }
    }
    std::copy(acc, acc + n, out + r * R + i0);
    if (with_abs) std::copy(acc_abs, acc_abs + n, out_abs + i0);
  }
}

/// The fp32-lane version of project_signs; false when it could not run (no AVX-512, a thread
/// that flushes subnormals) or a sum overflowed fp32.
bool project_signs_fp32(const float* m, int64_t rows, int64_t cols, bool trans, const double* signs,
                        int rounds, double* out, double* out_abs, bool parallel) {
  const int64_t R = trans ? cols : rows, K = trans ? rows : cols;
  if (!simd::avx512() || rounds < 1 || !simd::gradual_underflow()) return false;
  const bool threads = parallel && R * K >= kParallelElements && !omp_in_parallel();
  // Serial unless worth threads (see project_rows).
  const auto run = [threads](int64_t count, const auto& body) {
    if (threads && count > 1) {
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < count; ++i) body(i);
    } else {
      for (int64_t i = 0; i < count; ++i) body(i);
    }
  };
  if (trans) {
    const int64_t chunk = std::min<int64_t>(16, (K + 15) / 16 + 4);
    run((R + kSignBlock - 1) / kSignBlock, [&](int64_t b) {
      project_sign_block_avx512(m, R, K, signs, rounds, out, out_abs, b, chunk);
    });
  } else {
    // Rows: tiles of 8 through RowProjection::project8 (fp32 lanes), the rest row by row.
    const crypto::RowProjection p{signs, rounds, R, out, out_abs, nullptr};
    run(R / 8, [&](int64_t t) {
      const float* r8[8];
      int64_t index[8];
      for (int64_t k = 0; k < 8; ++k) {
        index[k] = 8 * t + k;
        r8[k] = m + index[k] * K;
      }
      p.project8(r8, K, index);
    });
    for (int64_t i = R / 8 * 8; i < R; ++i) p.project(m + i * K, K, i);
  }
  return projection_finite(out_abs, R);
}
}  // namespace

bool projection_finite(const double* out_abs, int64_t n) {
  constexpr uint64_t kExponent = 0x7FF0000000000000u;
  uint64_t non_finite = 0;
  for (int64_t i = 0; i < n; ++i)
    non_finite |=
        static_cast<uint64_t>((std::bit_cast<uint64_t>(out_abs[i]) & kExponent) == kExponent);
  return non_finite == 0;
}

void project_signs(const float* m, int64_t rows, int64_t cols, bool trans, const double* signs,
                   int rounds, double* out, double* out_abs, bool parallel) {
  if (project_signs_fp32(m, rows, cols, trans, signs, rounds, out, out_abs, parallel)) return;
  const std::vector<double> ones(static_cast<size_t>(trans ? rows : cols), 1.0);
  project(m, rows, cols, trans, signs, ones.data(), rounds, out, out_abs, parallel);
}

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
