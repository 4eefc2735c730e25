// Encryption of the operands of a batched product (attention: Q·K^T, P·V).
#pragma once

#include "common/blinded_tensor.h"
#include "master/core/tensor.h"
#include "master/crypto/keys.h"

namespace tempo::crypto {

/// Blinds A [batch, ., .] and B [batch, ., .] for C[b] = op(A[b])·op(B[b]) under a
/// BatchedMatmulKey, op(X) = X^T when the trans flag is set; op(A[b]) is m×k, op(B[b]) is k×n.
/// Blinded entry beta holds plaintext entry batch.perm[beta], encrypted as in MatmulEncryptor with
/// entries[beta] = (pi_m, r ; pi_k, s ; pi_n, u):
///   op(A')[beta][i][j] = r_i   * op(A)[batch.perm[beta]][pi_m(i)][pi_k(j)] * s_j
///   op(B')[beta][j][l] = 1/s_j * op(B)[batch.perm[beta]][pi_k(j)][pi_n(l)] * u_l
/// The blinded operands keep the storage layout (and trans flag) of the plaintext ones, so the
/// worker runs the same batched GEMM. The key is held by reference and must outlive the encryptor.
class BatchedMatmulEncryptor {
 public:
  explicit BatchedMatmulEncryptor(const BatchedMatmulKey& key) : key_(key) {}

  /// A [batch, m, k] (or [batch, k, m] when trans_a) -> A' of the same shape.
  BlindedTensor encrypt_a(const Tensor& a, bool trans_a) const;
  /// B [batch, k, n] (or [batch, n, k] when trans_b) -> B' of the same shape.
  BlindedTensor encrypt_b(const Tensor& b, bool trans_b) const;

 private:
  const BatchedMatmulKey& key_;
};

}  // namespace tempo::crypto
