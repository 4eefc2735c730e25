// Projections of a blinded result's rows, taken while a decryption kernel reads them.
#pragma once

#include <immintrin.h>

#include <cmath>
#include <cstdint>

#include "master/core/simd.h"

namespace tempo::crypto {

struct RowProjection;

namespace detail {

#include "master/crypto/row_sums.inc"

/// The AVX-512 instantiations (row_projection.cpp); call only when simd::avx512().
template <bool Abs, bool Weighted>
double row_sum_avx512(const float* row, const double* w, int64_t n);
template <bool WeightedAbs>
void row_sum_and_abs_avx512(const float* row, const double* w, const double* w_abs, int64_t n,
                            double* sum_out, double* abs_out);

/// Rows shorter than this stay on the AVX2 path: the wide loops would leave them to the scalar
/// tail (attention heads have 16 columns).
inline constexpr int64_t kAvx512MinRow = 32;

/// RowProjection::project8 on AVX-512 (rounds >= 1); call only when simd::avx512().
void project8_avx512(const RowProjection& p, const float* const rows[8], int64_t n,
                     const int64_t index[8]);

}  // namespace detail

/// Σ_j f(row[j])·w[j] in double (f = |.| with Abs; w = 1 without Weighted) over n floats.
/// Four independent vector sums: a single chain of additions waits on each one's latency and
/// runs at a quarter of the FMA throughput (measured: 6 instead of 20+ GFLOP/s on one core).
/// AVX-512 when simd::avx512() and the row is long enough, else AVX2.
template <bool Abs, bool Weighted>
inline double row_sum(const float* row, const double* w, int64_t n) {
  if (n >= detail::kAvx512MinRow && simd::avx512())
    return detail::row_sum_avx512<Abs, Weighted>(row, w, n);
  return detail::row_sum<simd::Avx2, Abs, Weighted>(row, w, n);
}

/// {Σ_j row[j]·w[j], Σ_j |row[j]|·w_abs[j]} in double over n floats (w_abs = 1 without
/// WeightedAbs): row_sum<false, true> and row_sum<true, WeightedAbs> in one pass, one load and
/// conversion of each float instead of two.
template <bool WeightedAbs>
inline void row_sum_and_abs(const float* row, const double* w, const double* w_abs, int64_t n,
                            double* sum_out, double* abs_out) {
  if (n >= detail::kAvx512MinRow && simd::avx512())
    return detail::row_sum_and_abs_avx512<WeightedAbs>(row, w, w_abs, n, sum_out, abs_out);
  detail::row_sum_and_abs<simd::Avx2, WeightedAbs>(row, w, w_abs, n, sum_out, abs_out);
}

/// What an integrity check needs from the rows of a matrix C [m, n] (integrity::ProductCheck),
/// filled by a kernel that reads or writes each row of C anyway, instead of in a pass of its own:
///   out[r·m + i] = Σ_j C[i][j] · vecs[r·n + j]   (r < rounds)
///   out_abs[i]   = Σ_j |C[i][j]| · abs_weights[j]   (abs_weights[j] = 1 when null)
/// i is the row as stored (blinded order). A result's rows are projected on the check's ±1
/// vectors by the kernel that decrypts it; an operand's rows on op(B)·v, weighted by |op(B)|·1, by
/// the kernel that blinds it (integrity::PreparedCheck). For a batched result, entry() gives each
/// entry's part (entries in blinded order).
/// Arithmetic: in double, except project8 on AVX-512 without abs_weights, which sums in fp32 lanes
/// within integrity::projection_relative_bound(n) of the exact sums provided `vecs` are ±1 (or
/// powers of two: exact products), as a check's sign vectors are. So abs_weights == null promises
/// such vectors.
struct RowProjection {
  const double* vecs = nullptr;  ///< [rounds][n]
  int rounds = 0;
  int64_t rows = 0;                     ///< m: the stride between rounds in `out`
  double* out = nullptr;                ///< [rounds][m]
  double* out_abs = nullptr;            ///< [m]
  const double* abs_weights = nullptr;  ///< [n], or null for all ones

  /// The projection of batch entry e of a batched result [batch, m, n] whose vectors are laid out
  /// [batch][rounds][n] and outputs [batch][rounds][m] and [batch][m] (integrity::ProductCheck);
  /// weights, if any, [batch][n].
  RowProjection entry(int64_t e, int64_t n) const {
    return {vecs + e * rounds * n,
            rounds,
            rows,
            out + e * rounds * rows,
            out_abs + e * rows,
            abs_weights ? abs_weights + e * n : nullptr};
  }

  /// Projects row i (n floats at `row`).
  void project(const float* row, int64_t n, int64_t i) const {
    if (rounds < 1) {
      out_abs[i] = abs_weights ? row_sum<true, true>(row, abs_weights, n)
                               : row_sum<true, false>(row, nullptr, n);
      return;
    }
    if (abs_weights)
      row_sum_and_abs<true>(row, vecs, abs_weights, n, &out[i], &out_abs[i]);
    else
      row_sum_and_abs<false>(row, vecs, nullptr, n, &out[i], &out_abs[i]);
    for (int r = 1; r < rounds; ++r) out[r * rows + i] = row_sum<false, true>(row, vecs + r * n, n);
  }

  /// project() of 8 rows at once (rows[k] is row index[k]): one load of each vector entry for all
  /// eight and no horizontal sum per row in the loop, for kernels that write rows in tiles of 8.
  /// The same terms as project(), summed in another order.
  void project8(const float* const rows8[8], int64_t n, const int64_t index[8]) const {
    if (rounds >= 1 && simd::avx512()) {
      detail::project8_avx512(*this, rows8, n, index);
      return;
    }
    for (int k = 0; k < 8; ++k) project(rows8[k], n, index[k]);
  }
};

}  // namespace tempo::crypto
