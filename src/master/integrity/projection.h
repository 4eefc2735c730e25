// Matrix-vector projections in double: the arithmetic of the product checks.
#pragma once

#include <cstdint>
#include <functional>

namespace tempo::integrity {

/// For op(M) of shape [R, K] (M stored row-major, [R, K] or, with `trans`, [K, R]):
///   out[r·R + i] = Σ_j op(M)[i, j] · x[r·K + j]   for r < rounds     (x: `rounds` vectors)
///   out_abs[i]   = Σ_j |op(M)[i, j]| · x_abs[j]
/// accumulated in double from the float entries. One pass over M. `parallel`: use OpenMP threads
/// (off when the caller already runs one projection per thread).
/// Elements below which a projection (or a batch of them) stays on one thread. The checks are
/// short and memory-bound, and the worker's GEMM threads share the cores with the master (the
/// embedded worker): measured, fork/join of small OpenMP regions under that contention cost more
/// than the whole check, so only passes over at least 4M elements (several ms) use threads.
inline constexpr int64_t kParallelElements = int64_t{1} << 22;

void project(const float* m, int64_t rows, int64_t cols, bool trans, const double* x,
             const double* x_abs, int rounds, double* out, double* out_abs, bool parallel);

/// project() of one operand computed by other means than reading it, for an operand the master
/// can project faster from what it was made of (patch mode: from the plaintext input, a fraction
/// of the blinded patch matrix). Same arguments and result as project(m, ..., x, x_abs, rounds,
/// out, out_abs); returns false when it could not guarantee the same result, and the check then
/// reads the operand.
using OperandProjection = std::function<bool(const double* x, const double* x_abs, int rounds,
                                             double* out, double* out_abs)>;

}  // namespace tempo::integrity
