// Floating-point error bounds that give the integrity checks their tolerances (docs/integrity.md).
#pragma once

#include <cmath>
#include <cstdint>
#include <string>

#include "common/rounding_bounds.h"

namespace tempo::integrity {

/// The arithmetic an honest worker may use for a product. The worker's inputs are fp32; the
/// precisions below round them before multiplying (tensor-core modes) and accumulate in fp32.
enum class Precision {
  kFp32,  ///< fp32 inputs and accumulation: unit roundoff 2^-24
  kTf32,  ///< inputs rounded to TF32 (u_in = 2^-11), fp32 accumulation
  kBf16,  ///< inputs rounded to bf16 (u_in = 2^-8), fp32 accumulation
};
Precision parse_precision(const std::string& name);  ///< "fp32" | "tf32" | "bf16"
const char* to_string(Precision p);

/// Unit roundoff of the worker's accumulation (fp32: 2^-24).
constexpr double kAccumulationRoundoff = rounding::kFp32Roundoff;
/// Unit roundoff of the check's own arithmetic (double).
constexpr double kCheckRoundoff = 0x1p-53;
/// Smallest positive normal fp32: bounds the absolute error of one product or sum that underflows.
constexpr double kFp32MinNormal = 0x1p-126;

/// Unit roundoff of the rounding applied to each input of a product (0 for fp32 inputs).
double input_roundoff(Precision p);

/// "" when the results of a worker that declares it computes in `declared` ("fp32", "tf32",
/// "bf16") can be checked under `accepted`'s tolerance, i.e. it rounds no more coarsely; else
/// why not. Honest results of a coarser worker would fail the checks, and loosening them is the
/// master's decision, never the worker's.
std::string precision_refusal(const std::string& declared, Precision accepted);

// gamma_n and the fp32 lanes' projection bound, shared with the worker's fault injector.
using rounding::gamma;
using rounding::projection_relative_bound;

/// Relative factor g of an honest dot product of length k: |fl(x·y) - x·y| <= g·|x|·|y| + abs.
/// With inputs rounded at u_in (each |x̂ - x| <= u_in|x|) and a length-k fp32 sum of exact
/// products (any order, FMA or not): g = (1+u_in)^2 (1 + gamma_k) - 1.
double dot_relative_bound(int64_t k, Precision p);

/// Absolute floor of the same dot product: each of the k products and k sums may underflow, by at
/// most half the smallest normal each (gradual underflow), and flushed subnormal inputs (DAZ)
/// are covered when the other operand is at most 1 in magnitude; we take k·2·2^-126.
inline double dot_absolute_bound(int64_t k) {
  return 2.0 * static_cast<double>(k) * kFp32MinNormal;
}

}  // namespace tempo::integrity
