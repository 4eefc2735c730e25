// The key-space metric of PROTOCOL.md section 6: bits of key entropy per offloaded tensor.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "master/crypto/conv_shape.h"
#include "master/crypto/obfuscation_params.h"

namespace tempo::crypto {

/// Key entropy of one blinded dimension: log2(n!) for its uniformly random permutation plus n
/// times the entropy of one scale.
struct DimensionEntropy {
  std::string name;  ///< e.g. "batch", "inner", "positions"
  int64_t size = 0;
  double permutation_bits = 0;  ///< log2(size!)
  double scale_bits = 0;        ///< size · (scale bits per entry, sign included)
  double bits() const { return permutation_bits + scale_bits; }
};

/// Key entropy hiding one tensor that a worker receives: the sum over its blinded dimensions
/// (the dimensions' keys are independent). A dimension left in the clear (the spatial planes of
/// channel mode) contributes nothing.
struct TensorKeySpace {
  std::string name;  ///< "X'", "W'", "dY'1", ...
  std::vector<DimensionEntropy> dims;
  double bits() const;
};

/// The key-space report of one offloaded operation, for the per-layer table the CLI prints.
struct OperationKeySpace {
  std::string operation;                ///< e.g. "matmul [64x512]x[512x10]"
  std::vector<TensorKeySpace> tensors;  ///< every tensor the worker receives for the operation
  double forward_key_bits = 0;          ///< entropy of the forward key (each dimension once)
  /// One line: the operation, the forward key bits and the bits of each tensor.
  std::string summary() const;
};

/// Computes the key-space metric for the parameters in force. Scale entropy per entry:
///   power-of-two: log2(2·sigma + 1) (the exponent is uniform on 2·sigma + 1 integers);
///   log-uniform:  log2(2·sigma) + 23, the count of fp32 values the continuous draw can produce
///                 (2·sigma binades of 2^23 mantissas); an upper bound of its min-entropy;
///   random-mantissa: log2(2·sigma) + 23, exactly (every one of those values equally likely);
/// plus 1 bit for a signed scale (the inner dimension). sigma = 0 gives 0 scale bits.
/// Permutation entropy: log2(n!) = lgamma(n + 1) / ln 2.
class KeySpace {
 public:
  explicit KeySpace(ObfuscationParams params = {}) : params_(params) {}

  static double log2_factorial(int64_t n);
  /// Of params().distribution, or of `distribution`.
  double scale_bits_per_entry(bool with_sign) const;
  double scale_bits_per_entry(bool with_sign, ScaleDistribution distribution) const;
  DimensionEntropy dimension(const std::string& name, int64_t size, bool scaled,
                             bool with_sign) const;
  DimensionEntropy dimension(const std::string& name, int64_t size, bool scaled, bool with_sign,
                             ScaleDistribution distribution) const;

  /// Y = X·W, X [m,k], W [k,n]: tensors X', W', dY'1, dY'2 (PROTOCOL.md sections 2, 4).
  OperationKeySpace matmul(int64_t m, int64_t k, int64_t n) const;
  /// C[b] = op(A[b])·op(B[b]) for `batch` entries: tensors A', B'.
  OperationKeySpace batched_matmul(int64_t batch, int64_t m, int64_t k, int64_t n) const;
  /// Channel mode: tensors X', W', dY'1, dY'2; spatial dimensions are not hidden (0 bits).
  OperationKeySpace conv_channel(const ConvShape& s) const;
  /// Patch mode: tensors X' (patches), W', dY'1, dY'2; positions and patch columns scaled per
  /// params().patch_distribution.
  OperationKeySpace patch_conv(const ConvShape& s) const;

 private:
  /// matmul() with the rows' and inner dimension's scales drawn from `operand_scales`.
  OperationKeySpace matmul(int64_t m, int64_t k, int64_t n, ScaleDistribution operand_scales) const;

  ObfuscationParams params_;
};

}  // namespace tempo::crypto
