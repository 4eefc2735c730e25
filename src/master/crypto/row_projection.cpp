#include "master/crypto/row_projection.h"

#include "master/core/avx512_lanes.h"

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

// (The zero-masking forms throughout: GCC 12 warns that the plain casts', inserts' and
// extracts' undefined pass-through sources are used uninitialised.)

/// 16 entries of a double vector from p, rounded to fp32; lanes outside `mask` are 0.
inline __m512 load_as_float(const double* p, __mmask16 mask) {
  const __m256 low = _mm512_maskz_cvtpd_ps(0xFF, _mm512_maskz_loadu_pd(mask & 0xFF, p));
  const __m256 high =
      _mm512_maskz_cvtpd_ps(0xFF, _mm512_maskz_loadu_pd(static_cast<__mmask8>(mask >> 8), p + 8));
  return _mm512_maskz_insertf32x8(
      0xFFFF, _mm512_maskz_insertf32x8(0xFFFF, _mm512_setzero_ps(), low, 0), high, 1);
}

/// out[k] = the sum of the 16 fp32 lanes of v[k], for 8 vectors at once: four levels of adding
/// lanes paired across vectors, in fp32, then widened (exactly) to double.
inline void lane_sums8(const __m512 v[8], double out[8]) {
  // Level 1, within 128-bit lanes: t[q] = {a0+a2, b0+b2, a1+a3, b1+b3} per 128-bit lane for
  // a = v[2q], b = v[2q+1].
  __m512 t[4];
  for (int q = 0; q < 4; ++q)
    t[q] = _mm512_add_ps(_mm512_maskz_unpacklo_ps(0xFFFF, v[2 * q], v[2 * q + 1]),
                         _mm512_maskz_unpackhi_ps(0xFFFF, v[2 * q], v[2 * q + 1]));
  // Level 2, 64-bit pairs: u[h] = {a, b, c, d} per 128-bit lane for the vectors 4h..4h+3.
  __m512 u[2];
  for (int h = 0; h < 2; ++h) {
    const __m512d x = _mm512_castps_pd(t[2 * h]), y = _mm512_castps_pd(t[2 * h + 1]);
    u[h] = _mm512_add_ps(_mm512_castpd_ps(_mm512_maskz_unpacklo_pd(0xFF, x, y)),
                         _mm512_castpd_ps(_mm512_maskz_unpackhi_pd(0xFF, x, y)));
  }
  // Level 3, across 128-bit lanes: w = {u0.L0+L1, u0.L2+L3, u1.L0+L1, u1.L2+L3}.
  const __m512 w = _mm512_add_ps(_mm512_maskz_shuffle_f32x4(0xFFFF, u[0], u[1], 0x88),
                                 _mm512_maskz_shuffle_f32x4(0xFFFF, u[0], u[1], 0xDD));
  // Level 4: {w.L0+w.L1, w.L2+w.L3} = the 8 sums in order.
  const __m512 f = _mm512_add_ps(w, _mm512_maskz_shuffle_f32x4(0xFFFF, w, w, 0xB1));
  const __m256 sums = _mm512_maskz_extractf32x8_ps(
      0xFF, _mm512_maskz_shuffle_f32x4(0xFFFF, f, f, 0x08), 0);  // 128-bit lanes 0 and 2
  _mm512_storeu_pd(out, _mm512_maskz_cvtps_pd(0xFF, sums));
}

/// Round r's sums of a tile of 8 rows (and the absolute sums, if any) to their rows' places.
inline void store_tile(const RowProjection& p, int r, const int64_t index[8], const double sums[8],
                       const double* mags) {
  for (int k = 0; k < 8; ++k) {
    p.out[r * p.rows + index[k]] = sums[k];
    if (mags != nullptr) p.out_abs[index[k]] = mags[k];
  }
}

/// In double lanes: operands' projections (weighted).
void project8_double(const RowProjection& p, const float* const rows[8], int64_t n,
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
    if (j < n) add(j, simd::tail_mask8(n - j));
    double sums[8], mags[8];
    _mm512_storeu_pd(sums, simd::sum_lanes8(sum));
    if (with_abs) _mm512_storeu_pd(mags, simd::sum_lanes8(mag));
    store_tile(p, r, index, sums, with_abs ? mags : nullptr);
  }
}

/// In fp32 lanes: projections on the check's ±1 vectors (no weights). The products are exact;
/// each lane adds ceil(n/16) of them in a chain, four levels add the lanes
/// (integrity::projection_relative_bound).
void project8_signs(const RowProjection& p, const float* const rows[8], int64_t n,
                    const int64_t index[8]) {
  for (int r = 0; r < p.rounds; ++r) {
    const double* v = p.vecs + r * n;
    const bool with_abs = r == 0;
    __m512 sum[8], mag[8];
    for (int k = 0; k < 8; ++k) sum[k] = mag[k] = _mm512_setzero_ps();
    for (int64_t j = 0; j < n; j += 16) {
      const __mmask16 mask = simd::tail_mask16(n - j);
      const __m512 vv = load_as_float(v + j, mask);
      if (with_abs) {
        for (int k = 0; k < 8; ++k) {
          const __m512 x = _mm512_maskz_loadu_ps(mask, rows[k] + j);
          sum[k] = _mm512_fmadd_ps(x, vv, sum[k]);
          mag[k] = _mm512_add_ps(simd::magnitude(x), mag[k]);
        }
      } else {
        for (int k = 0; k < 8; ++k)
          sum[k] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, rows[k] + j), vv, sum[k]);
      }
    }
    double sums[8], mags[8];
    lane_sums8(sum, sums);
    if (with_abs) lane_sums8(mag, mags);
    store_tile(p, r, index, sums, with_abs ? mags : nullptr);
  }
}

}  // namespace

void project8_avx512(const RowProjection& p, const float* const rows[8], int64_t n,
                     const int64_t index[8]) {
  if (p.abs_weights == nullptr && simd::gradual_underflow())
    project8_signs(p, rows, n, index);
  else
    project8_double(p, rows, n, index);
}

}  // namespace detail
TEMPO_END_AVX512

}  // namespace tempo::crypto
