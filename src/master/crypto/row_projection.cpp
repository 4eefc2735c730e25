#include "master/crypto/row_projection.h"

namespace tempo::crypto {

TEMPO_BEGIN_AVX512
namespace {
namespace avx512_bodies {
#include "master/crypto/row_sums.inc"
}  // namespace avx512_bodies
}  // namespace
TEMPO_END_AVX512

namespace detail {

template <bool Abs, bool Weighted>
TEMPO_TARGET_AVX512 double row_sum_avx512(const float* row, const double* w, int64_t n) {
  return avx512_bodies::row_sum<simd::Avx512, Abs, Weighted>(row, w, n);
}

template <bool WeightedAbs>
TEMPO_TARGET_AVX512 void row_sum_and_abs_avx512(const float* row, const double* w,
                                                const double* w_abs, int64_t n, double* sum_out,
                                                double* abs_out) {
  avx512_bodies::row_sum_and_abs<simd::Avx512, WeightedAbs>(row, w, w_abs, n, sum_out, abs_out);
}

template double row_sum_avx512<false, false>(const float*, const double*, int64_t);
template double row_sum_avx512<false, true>(const float*, const double*, int64_t);
template double row_sum_avx512<true, false>(const float*, const double*, int64_t);
template double row_sum_avx512<true, true>(const float*, const double*, int64_t);
template void row_sum_and_abs_avx512<false>(const float*, const double*, const double*, int64_t,
                                            double*, double*);
template void row_sum_and_abs_avx512<true>(const float*, const double*, const double*, int64_t,
                                           double*, double*);

}  // namespace detail

// The lambdas inside need the target too: a region, not an attribute.
TEMPO_BEGIN_AVX512
namespace detail {

namespace {
/// out[k] = the sum of the 8 lanes of v[k], for 8 vectors at once: three rounds of adding lanes
/// paired across vectors (21 shuffles and adds instead of 8 horizontal sums).
void lane_sums8(const __m512d v[8], double out[8]) {
  __m512d t[4];
  for (int q = 0; q < 4; ++q)  // [a0+a1, b0+b1, a2+a3, b2+b3, ...] for a = v[2q], b = v[2q+1]
    t[q] = _mm512_add_pd(_mm512_maskz_unpacklo_pd(0xFF, v[2 * q], v[2 * q + 1]),
                         _mm512_maskz_unpackhi_pd(0xFF, v[2 * q], v[2 * q + 1]));
  const __m512i low = _mm512_setr_epi64(0, 1, 8, 9, 4, 5, 12, 13);
  const __m512i high = _mm512_setr_epi64(2, 3, 10, 11, 6, 7, 14, 15);
  // [a0..3, b0..3, c0..3, d0..3, a4..7, b4..7, c4..7, d4..7] (partial sums)
  const __m512d u = _mm512_add_pd(_mm512_permutex2var_pd(t[0], low, t[1]),
                                  _mm512_permutex2var_pd(t[0], high, t[1]));
  const __m512d w = _mm512_add_pd(_mm512_permutex2var_pd(t[2], low, t[3]),
                                  _mm512_permutex2var_pd(t[2], high, t[3]));
  const __m512d sums =
      _mm512_add_pd(_mm512_permutex2var_pd(u, _mm512_setr_epi64(0, 1, 2, 3, 8, 9, 10, 11), w),
                    _mm512_permutex2var_pd(u, _mm512_setr_epi64(4, 5, 6, 7, 12, 13, 14, 15), w));
  _mm512_storeu_pd(out, sums);
}
}  // namespace

void project8_avx512(const RowProjection& p, const float* const rows[8], int64_t n,
                     const int64_t index[8]) {
  const __m512d ones = _mm512_set1_pd(1.0);
  for (int r = 0; r < p.rounds; ++r) {
    const double* v = p.vecs + r * n;
    const bool with_abs = r == 0;
    __m512d sum[8], mag[8];
    for (int k = 0; k < 8; ++k) sum[k] = mag[k] = _mm512_setzero_pd();
    const auto add = [&](int64_t j, __mmask8 mask) {
      const __m512d vv = _mm512_maskz_loadu_pd(mask, v + j);
      const __m512d ww = p.abs_weights ? _mm512_maskz_loadu_pd(mask, p.abs_weights + j) : ones;
      for (int k = 0; k < 8; ++k) {
        const __m512d d = _mm512_maskz_cvtps_pd(0xFF, _mm256_maskz_loadu_ps(mask, rows[k] + j));
        sum[k] = _mm512_fmadd_pd(d, vv, sum[k]);
        if (with_abs) mag[k] = _mm512_fmadd_pd(_mm512_abs_pd(d), ww, mag[k]);
      }
    };
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) add(j, 0xFF);
    if (j < n) add(j, static_cast<__mmask8>((1u << (n - j)) - 1u));
    double sums[8], mags[8];
    lane_sums8(sum, sums);
    if (with_abs) lane_sums8(mag, mags);
    for (int k = 0; k < 8; ++k) {
      p.out[r * p.rows + index[k]] = sums[k];
      if (with_abs) p.out_abs[index[k]] = mags[k];
    }
  }
}

}  // namespace detail
TEMPO_END_AVX512

}  // namespace tempo::crypto
