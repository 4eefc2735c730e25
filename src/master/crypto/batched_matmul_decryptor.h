// Decryption of the result of a blinded batched product.
#pragma once

#include <span>

#include "common/blinded_tensor.h"
#include "master/core/tensor.h"
#include "master/crypto/keys.h"
#include "master/crypto/row_projection.h"

namespace tempo::crypto {

/// C'[beta] = op(A'[beta])·op(B'[beta]) [batch, m, n] -> C, with
///   C[b] = P_m^T D_r^-1 C'[beta] D_u^-1 P_n^T  where beta = batch.inv_perm[b] and the key is
///   entries[beta].
/// The key is held by reference and must outlive the decryptor.
class BatchedMatmulDecryptor {
 public:
  explicit BatchedMatmulDecryptor(const BatchedMatmulKey& key) : key_(key) {}

  /// Throws std::invalid_argument when `c` is not [batch, m, n] for the key. With `projection`,
  /// also projects every row of every entry of `c` for its integrity check (RowProjection::entry).
  Tensor decrypt(const BlindedTensor& c, const RowProjection* projection = nullptr) const;
  /// dA'[beta] = dC'1[beta]·op(B')[beta]^T [batch, m, k] -> dA = dC·op(B)^T, with the fresh row
  /// keys of BatchedMatmulEncryptor::encrypt_grad_for_da: dA[b] = P_m1^T D_r1^-1 dA'[beta] D_s
  /// P_k^T.
  Tensor decrypt_da(const BlindedTensor& da, std::span<const DimKey> da_rows,
                    const RowProjection* projection = nullptr) const;
  /// dB' -> dB with the fresh column keys of encrypt_grad_for_db: dB' is A'^T·dC'2 [batch, k, n]
  /// = D_s P_k^T (A^T·dC) P_n2 D_u2, or with trans_b its transpose [batch, n, k], and dB has the
  /// layout of B.
  Tensor decrypt_db(const BlindedTensor& db, std::span<const DimKey> db_cols, bool trans_b) const;

 private:
  const BatchedMatmulKey& key_;
};

}  // namespace tempo::crypto
