#include "master/crypto/short_row_gather.h"

#include <immintrin.h>

#include <algorithm>
#include <bit>

#include "master/core/simd.h"
#include "master/crypto/row_kernels.h"

namespace tempo::crypto {

namespace {

/// The lanes of a row's 16-float block q that lie inside a row of n floats.
TEMPO_TARGET_AVX512 inline __mmask16 block_mask(int64_t n, int q) {
  const int64_t left = n - 16 * static_cast<int64_t>(q);
  return left >= 16 ? __mmask16{0xFFFF} : static_cast<__mmask16>((1u << left) - 1u);
}

/// Output block: lane l = the source row's entry idx[l] (< 16·kSources), from its registers s.
template <int kSources>
TEMPO_TARGET_AVX512 inline __m512 permute(const __m512* s, __m512i idx) {
  if constexpr (kSources == 1) {
    // The zero-masking form with every lane selected: GCC 12 warns that the plain one's
    // undefined pass-through source may be used uninitialised (-Wmaybe-uninitialized).
    return _mm512_maskz_permutexvar_ps(__mmask16{0xFFFF}, idx, s[0]);
  } else if constexpr (kSources == 2) {
    return _mm512_permutex2var_ps(s[0], idx, s[1]);
  } else {
    const __m512 low = _mm512_permutex2var_ps(s[0], idx, s[1]);
    const __m512 high = _mm512_permutex2var_ps(s[2], idx, s[3]);
    return _mm512_mask_blend_ps(_mm512_test_epi32_mask(idx, _mm512_set1_epi32(32)), low, high);
  }
}

/// The column indices, multipliers and lane masks of one output's blocks.
template <int kBlocks>
struct Columns {
  __m512i idx[kBlocks];
  __m512 mul[kBlocks];
  __mmask16 mask[kBlocks];
  TEMPO_TARGET_AVX512 Columns(int64_t n, const int32_t* col_index, const float* col_mul) {
    for (int q = 0; q < kBlocks; ++q) {
      mask[q] = block_mask(n, q);
      idx[q] = _mm512_maskz_loadu_epi32(mask[q], col_index + 16 * q);
      mul[q] = _mm512_maskz_loadu_ps(mask[q], col_mul + 16 * q);
    }
  }
};

/// d_row[j] = s[c.idx[j]] · (row_mul · c.mul[j]) for the n floats of a row.
template <int kBlocks, int kSources>
TEMPO_TARGET_AVX512 inline void store_row(const __m512* s, const Columns<kBlocks>& c, float row_mul,
                                          float* d_row) {
  const __m512 rm = _mm512_set1_ps(row_mul);
  for (int q = 0; q < kBlocks; ++q)
    _mm512_mask_storeu_ps(
        d_row + 16 * q, c.mask[q],
        _mm512_mul_ps(permute<kSources>(s, c.idx[q]), _mm512_mul_ps(rm, c.mul[q])));
}

/// Rows of n floats, 16·(kBlocks-1) < n <= 16·kBlocks: the block count is a compile-time
/// constant so that the column indices, multipliers and masks stay in registers. With kSecond,
/// each source row also goes to `second`.
template <int kBlocks, bool kSecond>
TEMPO_TARGET_AVX512 void gather_rows(const float* src, float* dst, int64_t n,
                                     const int32_t* row_index, const float* row_mul, int64_t begin,
                                     int64_t end, const int32_t* col_index, const float* col_mul,
                                     const RowProjection* projection, int64_t ahead,
                                     const SecondGather* second) {
  // The permutes take 1, 2 or 4 registers.
  constexpr int kSources = static_cast<int>(std::bit_ceil(static_cast<unsigned>(kBlocks)));
  const Columns<kBlocks> first(n, col_index, col_mul);
  const Columns<kBlocks> other =
      kSecond ? Columns<kBlocks>(n, second->col_index, second->col_mul) : first;
  // Only source rows are requested ahead (their order is permuted); the destination is written
  // in order, and requesting it too cost more instructions than the permutes themselves.
  const auto request = [&](int64_t i) {
    prefetch_row(src + static_cast<int64_t>(row_index[i]) * n, n);
  };
  if (ahead > 0)
    for (int64_t i = begin; i < std::min(end, begin + ahead); ++i) request(i);
  for (int64_t i = begin; i < end; ++i) {
    if (ahead > 0 && i + ahead < end) request(i + ahead);
    const int64_t source_row = row_index[i];
    const float* s_row = src + source_row * n;
    if (projection != nullptr) projection->project(s_row, n, source_row);
    __m512 s[kSources];
    for (int q = 0; q < kSources; ++q)
      s[q] =
          q < kBlocks ? _mm512_maskz_loadu_ps(first.mask[q], s_row + 16 * q) : _mm512_setzero_ps();
    store_row<kBlocks, kSources>(s, first, row_mul[i], dst + i * n);
    if constexpr (kSecond) {
      const int64_t i2 = second->inv_rows[source_row];
      store_row<kBlocks, kSources>(s, other, second->row_mul[i2], second->dst + i2 * n);
    }
  }
}

template <bool kSecond>
TEMPO_TARGET_AVX512 void gather_rows_any(const float* src, float* dst, int64_t n,
                                         const int32_t* row_index, const float* row_mul,
                                         int64_t begin, int64_t end, const int32_t* col_index,
                                         const float* col_mul, const RowProjection* projection,
                                         int64_t ahead, const SecondGather* second) {
  switch ((n + 15) / 16) {
    case 1:
      return gather_rows<1, kSecond>(src, dst, n, row_index, row_mul, begin, end, col_index,
                                     col_mul, projection, ahead, second);
    case 2:
      return gather_rows<2, kSecond>(src, dst, n, row_index, row_mul, begin, end, col_index,
                                     col_mul, projection, ahead, second);
    case 3:
      return gather_rows<3, kSecond>(src, dst, n, row_index, row_mul, begin, end, col_index,
                                     col_mul, projection, ahead, second);
    default:
      return gather_rows<4, kSecond>(src, dst, n, row_index, row_mul, begin, end, col_index,
                                     col_mul, projection, ahead, second);
  }
}

}  // namespace

TEMPO_TARGET_AVX512 void gather_short_rows_avx512(const float* src, float* dst, int64_t n,
                                                  const int32_t* row_index, const float* row_mul,
                                                  int64_t begin, int64_t end,
                                                  const int32_t* col_index, const float* col_mul,
                                                  const RowProjection* projection, int64_t ahead,
                                                  const SecondGather* second) {
  if (second != nullptr)
    gather_rows_any<true>(src, dst, n, row_index, row_mul, begin, end, col_index, col_mul,
                          projection, ahead, second);
  else
    gather_rows_any<false>(src, dst, n, row_index, row_mul, begin, end, col_index, col_mul,
                           projection, ahead, nullptr);
}

}  // namespace tempo::crypto
