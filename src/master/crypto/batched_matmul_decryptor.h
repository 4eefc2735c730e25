// Decryption of the result of a blinded batched product.
#pragma once

#include "common/blinded_tensor.h"
#include "master/core/tensor.h"
#include "master/crypto/keys.h"

namespace tempo::crypto {

/// C'[beta] = op(A'[beta])·op(B'[beta]) [batch, m, n] -> C, with
///   C[b] = P_m^T D_r^-1 C'[beta] D_u^-1 P_n^T  where beta = batch.inv_perm[b] and the key is
///   entries[beta].
/// The key is held by reference and must outlive the decryptor.
class BatchedMatmulDecryptor {
 public:
  explicit BatchedMatmulDecryptor(const BatchedMatmulKey& key) : key_(key) {}

  /// Throws std::invalid_argument when `c` is not [batch, m, n] for the key.
  Tensor decrypt(const BlindedTensor& c) const;

 private:
  const BatchedMatmulKey& key_;
};

}  // namespace tempo::crypto
