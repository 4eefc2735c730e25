// Projections of a blinded result's rows, taken while a decryption kernel reads them.
#pragma once

#include <cmath>
#include <cstdint>

namespace tempo::crypto {

/// Σ_j f(row[j])·w[j] in double (f = |.| with Abs; w = 1 without Weighted) over n floats.
/// Four independent vector sums: a single chain of additions waits on each one's latency and
/// runs at a quarter of the FMA throughput (measured: 6 instead of 20+ GFLOP/s on one core).
template <bool Abs, bool Weighted>
inline double row_sum(const float* row, const double* w, int64_t n) {
  // Vector values stay local (no function returns one): builds without AVX (the sanitizer
  // build) would otherwise change the ABI of such functions, which GCC reports (-Wpsabi).
  typedef double v4d __attribute__((vector_size(32)));
  typedef float v4f __attribute__((vector_size(16)));
  typedef int64_t v4i __attribute__((vector_size(32)));
  const v4i magnitude_bits = ~(v4i)(v4d{-0.0, -0.0, -0.0, -0.0});
  v4d s[4] = {};
  int64_t j = 0;
  for (; j + 16 <= n; j += 16)
    for (int k = 0; k < 4; ++k) {
      v4f f;
      __builtin_memcpy(&f, row + j + 4 * k, sizeof f);
      v4d d = __builtin_convertvector(f, v4d);
      if constexpr (Abs) d = (v4d)((v4i)d & magnitude_bits);
      if constexpr (Weighted) {
        v4d wv;
        __builtin_memcpy(&wv, w + j + 4 * k, sizeof wv);
        s[k] += d * wv;
      } else {
        s[k] += d;
      }
    }
  const v4d t = (s[0] + s[1]) + (s[2] + s[3]);
  double sum = (t[0] + t[1]) + (t[2] + t[3]);
  for (; j < n; ++j) {
    double a = row[j];
    if constexpr (Abs) a = std::fabs(a);
    if constexpr (Weighted) a *= w[j];
    sum += a;
  }
  return sum;
}

/// {Σ_j row[j]·w[j], Σ_j |row[j]|·w_abs[j]} in double over n floats (w_abs = 1 without
/// WeightedAbs): row_sum<false, true> and row_sum<true, WeightedAbs> in one pass, one load and
/// conversion of each float instead of two.
template <bool WeightedAbs>
inline void row_sum_and_abs(const float* row, const double* w, const double* w_abs, int64_t n,
                            double* sum_out, double* abs_out) {
  typedef double v4d __attribute__((vector_size(32)));
  typedef float v4f __attribute__((vector_size(16)));
  typedef int64_t v4i __attribute__((vector_size(32)));
  const v4i magnitude_bits = ~(v4i)(v4d{-0.0, -0.0, -0.0, -0.0});
  v4d s[2] = {}, a[2] = {};
  int64_t j = 0;
  for (; j + 8 <= n; j += 8)
    for (int k = 0; k < 2; ++k) {
      v4f f;
      __builtin_memcpy(&f, row + j + 4 * k, sizeof f);
      const v4d d = __builtin_convertvector(f, v4d);
      v4d wv;
      __builtin_memcpy(&wv, w + j + 4 * k, sizeof wv);
      s[k] += d * wv;
      const v4d magnitude = (v4d)((v4i)d & magnitude_bits);
      if constexpr (WeightedAbs) {
        v4d wa;
        __builtin_memcpy(&wa, w_abs + j + 4 * k, sizeof wa);
        a[k] += magnitude * wa;
      } else {
        a[k] += magnitude;
      }
    }
  const v4d st = s[0] + s[1], at = a[0] + a[1];
  double sum = (st[0] + st[1]) + (st[2] + st[3]);
  double abs_sum = (at[0] + at[1]) + (at[2] + at[3]);
  for (; j < n; ++j) {
    const double d = row[j];
    sum += d * w[j];
    abs_sum += WeightedAbs ? std::fabs(d) * w_abs[j] : std::fabs(d);
  }
  *sum_out = sum;
  *abs_out = abs_sum;
}

/// What an integrity check needs from a result C [m, n] (integrity::ProductCheck), filled by a
/// decryption kernel as it reads each row of C anyway, instead of in a pass of its own:
///   out[r·m + i] = Σ_j C[i][j] · vecs[r·n + j]   (r < rounds)      out_abs[i] = Σ_j |C[i][j]|
/// accumulated in double; i is the row as stored (blinded order). For a batched result, entry()
/// gives each entry's part (entries in blinded order).
struct RowProjection {
  const double* vecs = nullptr;  ///< [rounds][n]
  int rounds = 0;
  int64_t rows = 0;           ///< m: the stride between rounds in `out`
  double* out = nullptr;      ///< [rounds][m]
  double* out_abs = nullptr;  ///< [m]

  /// The projection of batch entry e of a batched result [batch, m, n] whose vectors are laid out
  /// [batch][rounds][n] and outputs [batch][rounds][m] and [batch][m] (integrity::ProductCheck).
  RowProjection entry(int64_t e, int64_t n) const {
    return {vecs + e * rounds * n, rounds, rows, out + e * rounds * rows, out_abs + e * rows};
  }

  /// Projects row i (n floats at `row`).
  void project(const float* row, int64_t n, int64_t i) const {
    if (rounds < 1) {
      out_abs[i] = row_sum<true, false>(row, nullptr, n);
      return;
    }
    row_sum_and_abs<false>(row, vecs, nullptr, n, &out[i], &out_abs[i]);
    for (int r = 1; r < rounds; ++r) out[r * rows + i] = row_sum<false, true>(row, vecs + r * n, n);
  }
};

}  // namespace tempo::crypto
