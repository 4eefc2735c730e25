// Internal: the row-level pieces of the memory-speed kernels (gather one row, prefetch rows
// visited in a permuted order).
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>

namespace tempo::crypto {

/// How far ahead (in rows) a kernel that visits rows of `row_floats` floats in permuted order
/// requests them: about 4 KiB of rows in flight, at least one row. The hardware prefetcher
/// cannot follow a permutation, and one cache miss at a time leaves DRAM mostly idle.
inline int64_t rows_ahead(int64_t row_floats) {
  constexpr int64_t kPrefetchBytes = 4096;
  return std::max<int64_t>(1, kPrefetchBytes / std::max<int64_t>(1, row_floats * 4));
}

/// prefetcht0 of every cache line of [row, row + n) (for reading or, before a store, to own the
/// lines early). An asm statement because GCC 12 deletes __builtin_prefetch loops once they are
/// inlined into the kernel's loop: no prefetch instruction was left in the object file.
inline void prefetch_row(const float* row, int64_t n) {
  const char* first = reinterpret_cast<const char*>(row);
  const char* last = reinterpret_cast<const char*>(row + n);
  // From the start of the first row's line (pointer arithmetic, not an integer cast to a pointer).
  for (const char* a = first - (reinterpret_cast<uintptr_t>(first) & 63); a < last; a += 64)
    asm volatile("prefetcht0 %0" : : "m"(*a));
}

/// d[j] = src[idx[j]] * (rm * mul[j]). GCC does not vectorise this gather when tuning for AMD
/// cores, so use AVX2 gathers explicitly where the build targets them (x86-64-v3).
inline void gather_row(const float* src, const int32_t* idx, const float* mul, float rm, int64_t n,
                       float* d) {
  int64_t j = 0;
#ifdef __AVX2__
  const __m256 vr = _mm256_set1_ps(rm);
  for (; j + 8 <= n; j += 8) {
    const __m256i vi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx + j));
    const __m256 v = _mm256_i32gather_ps(src, vi, 4);
    _mm256_storeu_ps(d + j, _mm256_mul_ps(v, _mm256_mul_ps(vr, _mm256_loadu_ps(mul + j))));
  }
#endif
  for (; j < n; ++j) d[j] = src[idx[j]] * (rm * mul[j]);
}

#ifdef __AVX2__
/// Transposes the 8x8 block whose row k is r[k], in place.
inline void transpose8x8(__m256 r[8]) {
  __m256 t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 2; ++i) {
    u[4 * i] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int k = 0; k < 4; ++k) {
    r[k] = _mm256_permute2f128_ps(u[k], u[4 + k], 0x20);
    r[4 + k] = _mm256_permute2f128_ps(u[k], u[4 + k], 0x31);
  }
}

/// columns[q·8 + k] = rows[k][q] for q < n (n a multiple of 8): 8 rows of n floats become n
/// vectors of 8, one per column, each a single 32-byte load afterwards.
inline void transpose_rows8_to_columns(const float* const rows[8], int64_t n, float* columns) {
  for (int64_t q = 0; q < n; q += 8) {
    __m256 r[8];
    for (int k = 0; k < 8; ++k) r[k] = _mm256_loadu_ps(rows[k] + q);
    transpose8x8(r);
    for (int k = 0; k < 8; ++k) _mm256_storeu_ps(columns + (q + k) * 8, r[k]);
  }
}

/// The second half of gather_rows8, from the transposed `columns` of the 8 source rows: several
/// destinations of the same rows share one transpose (permute_scale_pair).
inline void gather_columns8(const float* columns, const int32_t* idx, const float* mul,
                            const float* rm, int64_t n, float* const d[8]) {
  const __m256 row_mul = _mm256_loadu_ps(rm);
  for (int64_t j = 0; j < n; j += 8) {
    __m256 r[8];
    for (int k = 0; k < 8; ++k)
      r[k] = _mm256_mul_ps(_mm256_loadu_ps(columns + static_cast<int64_t>(idx[j + k]) * 8),
                           _mm256_mul_ps(row_mul, _mm256_set1_ps(mul[j + k])));
    transpose8x8(r);
    for (int k = 0; k < 8; ++k) _mm256_storeu_ps(d[k] + j, r[k]);
  }
}

/// gather_row for 8 rows at once: d[k][j] = src[k][idx[j]] * (rm[k] * mul[j]), n a multiple of
/// 8, `columns` scratch of 8·n floats. The 8 source rows are transposed into `columns` so that
/// each source column is one 32-byte load; the permuted, scaled columns are transposed back.
/// This replaces one hardware gather per 8 outputs, which is slow on current x86 cores: 2-2.7x
/// faster for rows of 64-2048 floats on the development VM (docs/notes/crypto-throughput.md).
inline void gather_rows8(const float* const src[8], const int32_t* idx, const float* mul,
                         const float* rm, int64_t n, float* const d[8], float* columns) {
  transpose_rows8_to_columns(src, n, columns);
  gather_columns8(columns, idx, mul, rm, n, d);
}
#endif

}  // namespace tempo::crypto
