// Encryption of the operands of a batched product (attention: Q·K^T, P·V).
#pragma once

#include <span>

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

  /// The key shift of PROTOCOL.md section 4, per entry (trans_a = false):
  /// dC [batch, m, n] -> dC'1[beta] = D_r1 P_m1 dC[batch.perm[beta]] P_n D_u^-1, with
  /// (pi_m1, r1) = da_rows[beta] fresh; the worker's dC'1·op(B')^T gives dA' (decrypt_da).
  BlindedTensor encrypt_grad_for_da(const Tensor& dc, std::span<const DimKey> da_rows) const;
  /// dC -> dC'2[beta] = D_r^-1 P_m dC[batch.perm[beta]] P_n2 D_u2, (pi_n2, u2) = db_cols[beta]
  /// fresh; the worker's A'^T·dC'2 (or its transpose) gives dB' (decrypt_db).
  BlindedTensor encrypt_grad_for_db(const Tensor& dc, std::span<const DimKey> db_cols) const;

 private:
  const BatchedMatmulKey& key_;
};

}  // namespace tempo::crypto
