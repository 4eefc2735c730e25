// Internal: permute_scale's row gather for rows of at most 64 floats, by in-register permutes.
#pragma once

#include <cstdint>

#include "master/crypto/row_projection.h"

namespace tempo::crypto {

/// Widest row (in floats) that gather_short_rows_avx512 handles: four 512-bit registers.
inline constexpr int64_t kShortRowMaxFloats = 64;

/// A second destination of the same source rows (permute_scale_pair): source row r goes to row
/// inv_rows[r] of `dst`, entry j = source column col_index[j] · (row_mul[inv_rows[r]] ·
/// col_mul[j]).
struct SecondGather {
  float* dst;
  const int32_t* inv_rows;
  const float* row_mul;
  const int32_t* col_index;
  const float* col_mul;
  /// RowProjection::project of every row written to `dst` (may be null).
  const RowProjection* projection = nullptr;
};

/// Rows [begin, end) of a plane-1 permute_scale with rows of 1 <= n <= kShortRowMaxFloats floats:
///   dst[i·n + j] = src[row_index[i]·n + col_index[j]] · (row_mul[i] · col_mul[j])
/// (the same products, in the same order, as the other gathers: bit-identical output). Each source
/// row is loaded into at most four registers and permuted there (vpermps / vpermt2ps and a blend),
/// instead of one element at a time: attention heads (16 or 64 columns) and narrow Linear layers.
/// `projection` (may be null): RowProjection::project of every source row, as permute_scale does;
/// `dst_projection` (may be null): of every destination row, once written. `ahead`: rows whose
/// lines are requested early (0: none). `second` (may be null): also writes each source row, while
/// it is in registers, to a second destination. Call only when simd::avx512().
void gather_short_rows_avx512(const float* src, float* dst, int64_t n, const int32_t* row_index,
                              const float* row_mul, int64_t begin, int64_t end,
                              const int32_t* col_index, const float* col_mul,
                              const RowProjection* projection, const RowProjection* dst_projection,
                              int64_t ahead, const SecondGather* second = nullptr);

}  // namespace tempo::crypto
