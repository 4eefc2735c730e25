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
  const uintptr_t last = reinterpret_cast<uintptr_t>(row + n);
  for (uintptr_t a = reinterpret_cast<uintptr_t>(row) & ~uintptr_t{63}; a < last; a += 64)
    asm volatile("prefetcht0 %0" : : "m"(*reinterpret_cast<const char*>(a)));
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

}  // namespace tempo::crypto
