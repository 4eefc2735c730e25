// Encryption of the operands of a batched product (attention: Q·K^T, P·V).
#pragma once

#include <span>
#include <utility>

#include "common/blinded_tensor.h"
#include "master/core/tensor.h"
#include "master/crypto/keys.h"
#include "master/crypto/row_projection.h"

namespace tempo::crypto {

/// Blinds A [batch, ., .] and B [batch, ., .] for C[b] = op(A[b])·op(B[b]) under a
/// BatchedMatmulKey, op(X) = X^T when the trans flag is set; op(A[b]) is m×k, op(B[b]) is k×n.
/// Blinded entry beta holds plaintext entry batch.perm[beta], encrypted as in MatmulEncryptor with
/// entries[beta] = (pi_m, r ; pi_k, s ; pi_n, u):
///   op(A')[beta][i][j] = r_i   * op(A)[batch.perm[beta]][pi_m(i)][pi_k(j)] * s_j
///   op(B')[beta][j][l] = 1/s_j * op(B)[batch.perm[beta]][pi_k(j)][pi_n(l)] * u_l
/// The blinded operands keep the storage layout (and trans flag) of the plaintext ones, so the
/// worker runs the same batched GEMM. The key is held by reference and must outlive the encryptor.
///
/// Every method takes an optional `projection` of the rows of the tensor it writes, as stored
/// (laid out by blinded entry: RowProjection::entry), taken as each row is written for the
/// integrity check of the product it is an operand of (integrity::PreparedCheck).
class BatchedMatmulEncryptor {
 public:
  explicit BatchedMatmulEncryptor(const BatchedMatmulKey& key) : key_(key) {}

  /// A [batch, m, k] (or [batch, k, m] when trans_a) -> A' of the same shape.
  BlindedTensor encrypt_a(const Tensor& a, bool trans_a,
                          const RowProjection* projection = nullptr) const;
  /// B [batch, k, n] (or [batch, n, k] when trans_b) -> B' of the same shape.
  BlindedTensor encrypt_b(const Tensor& b, bool trans_b,
                          const RowProjection* projection = nullptr) const;

  /// The key shift of PROTOCOL.md section 4, per entry (trans_a = false):
  /// dC [batch, m, n] -> dC'1[beta] = D_r1 P_m1 dC[batch.perm[beta]] P_n D_u^-1, with
  /// (pi_m1, r1) = da_rows[beta] fresh; the worker's dC'1·op(B')^T gives dA' (decrypt_da).
  BlindedTensor encrypt_grad_for_da(const Tensor& dc, std::span<const DimKey> da_rows,
                                    const RowProjection* projection = nullptr) const;
  /// dC -> dC'2[beta] = D_r^-1 P_m dC[batch.perm[beta]] P_n2 D_u2, (pi_n2, u2) = db_cols[beta]
  /// fresh; the worker's A'^T·dC'2 (or its transpose) gives dB' (decrypt_db).
  BlindedTensor encrypt_grad_for_db(const Tensor& dc, std::span<const DimKey> db_cols,
                                    const RowProjection* projection = nullptr) const;
  /// {encrypt_grad_for_da(dc, da_rows), encrypt_grad_for_db(dc, db_cols)} in one pass over dC
  /// (permute_scale_pair per entry), bit-identical to the two calls.
  std::pair<BlindedTensor, BlindedTensor> encrypt_grads(
      const Tensor& dc, std::span<const DimKey> da_rows, std::span<const DimKey> db_cols,
      const RowProjection* project_da = nullptr, const RowProjection* project_db = nullptr) const;

 private:
  const BatchedMatmulKey& key_;
};

}  // namespace tempo::crypto
