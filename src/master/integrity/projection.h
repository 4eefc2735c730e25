// Matrix-vector projections in double: the arithmetic of the product checks.
#pragma once

#include <cstdint>
#include <functional>

namespace tempo::integrity {

/// Elements below which a projection (or a batch of them) stays on one thread: a fork/join costs
/// a few microseconds. (Until the embedded CPU worker ran its requests on the master's thread,
/// its GEMM threads competed with the check's and this was 4M elements: under that contention
/// small OpenMP regions cost more than the whole check. With the cores free, the 64K threshold
/// took resnet18's checks from 0.055-0.066 to 0.040-0.047 s per step, docs/integrity.md.)
inline constexpr int64_t kParallelElements = int64_t{1} << 16;

/// For op(M) of shape [R, K] (M stored row-major, [R, K] or, with `trans`, [K, R]):
///   out[r·R + i] = Σ_j op(M)[i, j] · x[r·K + j]   for r < rounds     (x: `rounds` vectors)
///   out_abs[i]   = Σ_j |op(M)[i, j]| · x_abs[j]
/// accumulated in double from the float entries. One pass over M. `parallel`: use OpenMP threads
/// (off when the caller already runs one projection per thread).
void project(const float* m, int64_t rows, int64_t cols, bool trans, const double* x,
             const double* x_abs, int rounds, double* out, double* out_abs, bool parallel);

/// project() on the check's sign vectors: x = `rounds` vectors of ±1 entries and x_abs = 1 (the
/// B side op(B)·v and the result's C·v). May sum in fp32 lanes: within
/// projection_relative_bound(cols of op(M)) of the exact sums (error_bound.h), not double's.
void project_signs(const float* m, int64_t rows, int64_t cols, bool trans, const double* signs,
                   int rounds, double* out, double* out_abs, bool parallel);

/// True when no fp32 sum of a projection overflowed: its n absolute sums (out_abs) are all finite.
/// They bound the signed sums of the same terms, and a NaN entry makes its row's NaN too. An
/// exponent-bit test that the compiler vectorises.
bool projection_finite(const double* out_abs, int64_t n);

/// project() of one operand computed by other means than reading it, for an operand the master
/// can project faster from what it was made of (patch mode: from the plaintext input, a fraction
/// of the blinded patch matrix). Same arguments and result as project(m, ..., x, x_abs, rounds,
/// out, out_abs); returns false when it could not guarantee the same result, and the check then
/// reads the operand.
using OperandProjection = std::function<bool(const double* x, const double* x_abs, int rounds,
                                             double* out, double* out_abs)>;

}  // namespace tempo::integrity
