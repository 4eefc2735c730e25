#include "master/crypto/short_row_gather.h"

#include <immintrin.h>

#include <algorithm>
#include <bit>

#include "master/core/avx512_lanes.h"
#include "master/core/simd.h"
#include "master/crypto/row_kernels.h"

namespace tempo::crypto {

namespace {

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
      mask[q] = simd::tail_mask16(n - 16 * static_cast<int64_t>(q));  // inside the row
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
                                     const RowProjection* projection,
                                     const RowProjection* dst_projection, int64_t ahead,
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
  // Written rows are projected in tiles of 8 (RowProjection::project8), each once 8 more rows are
  // written: read back at once, a row still in the store buffer (masked 512-bit stores) cannot be
  // forwarded to the projection's narrower loads, and each such load waits for the stores to
  // drain.
  constexpr int64_t kRing = 16;
  int64_t written2[kRing] = {};  // second destination rows of the last kRing source rows
  int64_t projected_to = begin;
  const auto project_tile = [&](int64_t g) {  // rows [g, g + 8)
    const float* rows1[8];
    const float* rows2[8];
    int64_t index1[8], index2[8];
    for (int64_t k = 0; k < 8; ++k) {
      index1[k] = g + k;
      rows1[k] = dst + (g + k) * n;
      if constexpr (kSecond) {
        index2[k] = written2[(g + k) % kRing];
        rows2[k] = second->dst + index2[k] * n;
      }
    }
    if (dst_projection != nullptr) dst_projection->project8(rows1, n, index1);
    if constexpr (kSecond)
      if (second->projection != nullptr) second->projection->project8(rows2, n, index2);
    projected_to = g + 8;
  };
  const bool projects = dst_projection != nullptr || (kSecond && second->projection != nullptr);
  for (int64_t i = begin; i < end; ++i) {
    if (ahead > 0 && i + ahead < end) request(i + ahead);
    if (projects && i - begin >= 16 && (i - begin) % 8 == 0) project_tile(i - 16);  // frees slots
    const int64_t source_row = row_index[i];
    const float* s_row = src + source_row * n;
    // Source rows are projected 8 at a time, as the 8th of them is read.
    if (projection != nullptr && (i - begin) % 8 == 7) {
      const float* sources[8];
      int64_t source_rows[8];
      for (int64_t k = 0; k < 8; ++k) {
        source_rows[k] = row_index[i - 7 + k];
        sources[k] = src + source_rows[k] * n;
      }
      projection->project8(sources, n, source_rows);
    }
    __m512 s[kSources];
    for (int q = 0; q < kSources; ++q)
      s[q] =
          q < kBlocks ? _mm512_maskz_loadu_ps(first.mask[q], s_row + 16 * q) : _mm512_setzero_ps();
    store_row<kBlocks, kSources>(s, first, row_mul[i], dst + i * n);
    if constexpr (kSecond) {
      const int64_t i2 = second->inv_rows[source_row];
      store_row<kBlocks, kSources>(s, other, second->row_mul[i2], second->dst + i2 * n);
      written2[i % kRing] = i2;
    }
  }
  if (projection != nullptr)
    for (int64_t i = end - (end - begin) % 8; i < end; ++i)
      projection->project(src + static_cast<int64_t>(row_index[i]) * n, n, row_index[i]);
  if (!projects) return;
  while (projected_to + 8 <= end) project_tile(projected_to);  // advances projected_to
  for (int64_t i = projected_to; i < end; ++i) {
    if (dst_projection != nullptr) dst_projection->project(dst + i * n, n, i);
    if constexpr (kSecond) {
      const int64_t i2 = written2[i % kRing];
      if (second->projection != nullptr) second->projection->project(second->dst + i2 * n, n, i2);
    }
  }
}

template <bool kSecond>
TEMPO_TARGET_AVX512 void gather_rows_any(const float* src, float* dst, int64_t n,
                                         const int32_t* row_index, const float* row_mul,
                                         int64_t begin, int64_t end, const int32_t* col_index,
                                         const float* col_mul, const RowProjection* projection,
                                         const RowProjection* dst_projection, int64_t ahead,
                                         const SecondGather* second) {
  switch ((n + 15) / 16) {
    case 1:
      return gather_rows<1, kSecond>(src, dst, n, row_index, row_mul, begin, end, col_index,
                                     col_mul, projection, dst_projection, ahead, second);
    case 2:
      return gather_rows<2, kSecond>(src, dst, n, row_index, row_mul, begin, end, col_index,
                                     col_mul, projection, dst_projection, ahead, second);
    case 3:
      return gather_rows<3, kSecond>(src, dst, n, row_index, row_mul, begin, end, col_index,
                                     col_mul, projection, dst_projection, ahead, second);
    default:
      return gather_rows<4, kSecond>(src, dst, n, row_index, row_mul, begin, end, col_index,
                                     col_mul, projection, dst_projection, ahead, second);
  }
}

}  // namespace

TEMPO_TARGET_AVX512 void gather_short_rows_avx512(const float* src, float* dst, int64_t n,
                                                  const int32_t* row_index, const float* row_mul,
                                                  int64_t begin, int64_t end,
                                                  const int32_t* col_index, const float* col_mul,
                                                  const RowProjection* projection,
                                                  const RowProjection* dst_projection,
                                                  int64_t ahead, const SecondGather* second) {
  if (second != nullptr)
    gather_rows_any<true>(src, dst, n, row_index, row_mul, begin, end, col_index, col_mul,
                          projection, dst_projection, ahead, second);
  else
    gather_rows_any<false>(src, dst, n, row_index, row_mul, begin, end, col_index, col_mul,
                           projection, dst_projection, ahead, nullptr);
}

}  // namespace tempo::crypto
