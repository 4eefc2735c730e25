// One-call API for a blinded batched product (attention).
#pragma once

#include "common/blinded_tensor.h"
#include "master/core/tensor.h"
#include "master/crypto/key_generator.h"
#include "master/crypto/keys.h"

namespace tempo::crypto {

/// One blinded batched product C[b] = op(A[b])·op(B[b]): both operands are fresh activations,
/// nothing is cached for a backward (the attention backward is made of further such products).
/// Worker: C' = batched_matmul(A', B', trans_a, trans_b), same flags as the plaintext call.
class BatchedMatmulProduct {
 public:
  const BlindedTensor& a() const { return a_; }
  const BlindedTensor& b() const { return b_; }
  bool trans_a() const { return trans_a_; }
  bool trans_b() const { return trans_b_; }
  /// C' [batch, m, n] -> C.
  Tensor decrypt(const BlindedTensor& c) const;
  const BatchedMatmulKey& key() const { return key_; }

 private:
  friend class BatchedMatmulObfuscator;
  BatchedMatmulKey key_;
  BlindedTensor a_, b_;
  bool trans_a_ = false, trans_b_ = false;
};

/// Blinds batched products with a fresh BatchedMatmulKey per call.
class BatchedMatmulObfuscator {
 public:
  explicit BatchedMatmulObfuscator(ObfuscationParams params = {}) : keygen_(params) {}

  /// A, B rank 3 with equal batch; op(A[b]) m×k, op(B[b]) k×n. Throws std::invalid_argument
  /// when they do not chain.
  BatchedMatmulProduct encrypt(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) const;

 private:
  KeyGenerator keygen_;
};

}  // namespace tempo::crypto
