// Floating-point rounding bounds that both sides of the trust boundary need: the master's
// integrity checks derive their tolerances from them (master/integrity/error_bound.h,
// docs/integrity.md section 2), and the worker's fault injector, a testing aid, sizes its
// "just past the tolerance" perturbations with the same formulas, so the two cannot drift apart.
// Nothing here is secret: it is arithmetic on public shapes.
#pragma once

#include <cmath>
#include <cstdint>

namespace tempo::rounding {

/// Unit roundoff of fp32 arithmetic (2^-24): the worker's accumulation, the checks' fp32 lanes.
constexpr double kFp32Roundoff = 0x1p-24;

/// gamma_n = n·u / (1 - n·u) (Higham, Accuracy and Stability of Numerical Algorithms, 3.1);
/// +infinity once n·u >= 1 (no bound).
inline double gamma(int64_t n, double u) {
  const double nu = static_cast<double>(n) * u;
  return nu < 1.0 ? nu / (1.0 - nu) : INFINITY;
}

/// Relative error bound of the master check's projection of one row of `len` fp32 entries on a
/// ±1 vector (C·v, op(B)·v) and of its absolute sum: |computed - exact| <= bound · Σ_j |x_j|.
/// The AVX-512 kernels (crypto::RowProjection::project8) sum in 16 fp32 lanes, ceil(len/16)
/// exact terms each, then add the lanes in four fp32 levels: ceil(len/16) + 4 roundings at
/// u = 2^-24 per term, never an underflow (gradual underflow, checked; sums of exact terms);
/// the other kernels sum in double, well inside the same bound. One level of margin.
inline double projection_relative_bound(int64_t len) {
  return gamma((len + 15) / 16 + 5, kFp32Roundoff);
}

}  // namespace tempo::rounding
