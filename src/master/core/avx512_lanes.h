// AVX-512 building blocks shared by the blinding kernels and the checks' projections (crypto:
// row_projection.cpp, short_row_gather.cpp; integrity: projection.cpp): the masks of a row's
// last partial vector, the magnitude of fp32 lanes, and the sums of the lanes of 8 vectors at
// once. Call them only from code compiled for AVX-512 (TEMPO_TARGET_AVX512 or inside
// TEMPO_BEGIN_AVX512 ... TEMPO_END_AVX512), when simd::avx512() is true.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "master/core/simd.h"

namespace tempo::simd {

/// The first min(left, 16) lanes of a 16-float vector (left >= 0).
TEMPO_TARGET_AVX512 inline __mmask16 tail_mask16(int64_t left) {
  return left >= 16 ? __mmask16{0xFFFF} : static_cast<__mmask16>((1u << left) - 1u);
}

/// The first min(left, 8) lanes of an 8-double vector (left >= 0).
TEMPO_TARGET_AVX512 inline __mmask8 tail_mask8(int64_t left) {
  return left >= 8 ? __mmask8{0xFF} : static_cast<__mmask8>((1u << left) - 1u);
}

/// |x| per fp32 lane: the sign bit cleared. (A function, not a namespace-scope constant, whose
/// initializer would run AVX-512 code at start-up on any CPU.)
TEMPO_TARGET_AVX512 inline __m512 magnitude(__m512 x) {
  return _mm512_castsi512_ps(
      _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(0x7FFFFFFF)));
}

/// Lane k of the result: the sum of the 8 lanes of v[k], for 8 vectors at once (three levels of
/// adding lanes paired across vectors: 14 shuffles and adds instead of 8 horizontal sums).
/// (Zero-masking forms with every lane selected: GCC 12 warns that the plain ones' undefined
/// pass-through sources may be used uninitialised.)
TEMPO_TARGET_AVX512 inline __m512d sum_lanes8(const __m512d v[8]) {
  constexpr __mmask8 kAll = 0xFF;
  __m512d pairs[4];  // per 128-bit lane L: {v[2p] pair sum, v[2p+1] pair sum}
  for (int p = 0; p < 4; ++p)
    pairs[p] = _mm512_add_pd(_mm512_maskz_unpacklo_pd(kAll, v[2 * p], v[2 * p + 1]),
                             _mm512_maskz_unpackhi_pd(kAll, v[2 * p], v[2 * p + 1]));
  __m512d quads[2];  // lanes {L0+L1, L2+L3} of pairs[2q], then of pairs[2q+1]
  for (int q = 0; q < 2; ++q)
    quads[q] =
        _mm512_add_pd(_mm512_maskz_shuffle_f64x2(kAll, pairs[2 * q], pairs[2 * q + 1], 0x88),
                      _mm512_maskz_shuffle_f64x2(kAll, pairs[2 * q], pairs[2 * q + 1], 0xDD));
  return _mm512_add_pd(_mm512_maskz_shuffle_f64x2(kAll, quads[0], quads[1], 0x88),
                       _mm512_maskz_shuffle_f64x2(kAll, quads[0], quads[1], 0xDD));
}

}  // namespace tempo::simd
