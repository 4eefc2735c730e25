// Runtime choice of the vector width of the integrity checks' double-precision kernels and of
// the short-row gathers of encryption and decryption (crypto::gather_short_rows_avx512).
#pragma once

#include <xmmintrin.h>

#include <atomic>
#include <cstdint>

namespace tempo::simd {

/// Vector types of one register for the kernels written with GCC/Clang vector extensions:
/// `d` holds kLanes doubles, `f` as many floats, `i` as many 64-bit integers.
struct Avx2 {
  static constexpr int kLanes = 4;
  typedef double d __attribute__((vector_size(32)));
  typedef float f __attribute__((vector_size(16)));
  typedef int64_t i __attribute__((vector_size(32)));
};
struct Avx512 {
  static constexpr int kLanes = 8;
  typedef double d __attribute__((vector_size(64)));
  typedef float f __attribute__((vector_size(32)));
  typedef int64_t i __attribute__((vector_size(64)));
};

/// TEMPO_TARGET_AVX512 marks one function, TEMPO_BEGIN_AVX512 ... TEMPO_END_AVX512 every function
/// defined in between, as compiled for AVX-512 (F, DQ, VL, BW) whatever the build's -march, with
/// loops vectorised 512 bits wide. Call such code only when avx512() is true. A kernel keeps its
/// body in a template over Avx2/Avx512, defined once outside such a region and once inside it, in
/// another namespace: everything else stays portable (an AVX-512 copy of an ordinary inline
/// function would be a link-time candidate for every caller, and fault on a CPU without AVX-512).
#if defined(__clang__)
#define TEMPO_TARGET_AVX512 \
  __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw"), min_vector_width(512)))
// clang-format off
#define TEMPO_BEGIN_AVX512 _Pragma("clang attribute push(__attribute__((target(\"avx512f,avx512dq,avx512vl,avx512bw\"))), apply_to = function)")
// clang-format on
#define TEMPO_END_AVX512 _Pragma("clang attribute pop")
#else
#define TEMPO_TARGET_AVX512 \
  __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,prefer-vector-width=512")))
#define TEMPO_BEGIN_AVX512    \
  _Pragma("GCC push_options") \
      _Pragma("GCC target(\"avx512f,avx512dq,avx512vl,avx512bw,prefer-vector-width=512\")")
#define TEMPO_END_AVX512 _Pragma("GCC pop_options")
#endif

namespace detail {
extern std::atomic<bool> g_avx512;
}

/// Whether the kernels that have an AVX-512 version use it: the CPU has AVX-512 F, DQ, VL and BW
/// and the environment variable TEMPO_SIMD is not `avx2`. Decided once, at start-up; twice the
/// doubles per instruction of AVX2 (on a CPU with full-width AVX-512 units, e.g. AMD Zen 5:
/// measured 1.6x on the row projections, docs/integrity.md).
inline bool avx512() { return detail::g_avx512.load(std::memory_order_relaxed); }

/// Whether this CPU can run the AVX-512 kernels (whatever TEMPO_SIMD says).
bool cpu_has_avx512() noexcept;

/// Whether the calling thread rounds subnormals as IEEE 754 says (neither flush-to-zero nor
/// denormals-are-zero set in its MXCSR): then an fp32 sum of exact terms only rounds, never
/// underflows, which the integrity checks' fp32 sign projections rely on
/// (integrity::projection_relative_bound).
inline bool gradual_underflow() { return (_mm_getcsr() & 0x8040u) == 0; }

/// Uses the AVX-512 kernels from now on if `wanted` and the CPU has them, else the AVX2 ones;
/// returns the previous setting. For tests and benchmarks that compare the two; not to be called
/// while kernels run on other threads.
bool use_avx512(bool wanted);

/// "avx512" or "avx2": what avx512() chose, for logs and benchmark records.
const char* level_name();

}  // namespace tempo::simd
