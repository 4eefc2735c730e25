// Decryption of the results of a blinded matrix product (sections 2 and 4).
#pragma once

#include "common/blinded_tensor.h"
#include "master/core/tensor.h"
#include "master/crypto/keys.h"
#include "master/crypto/row_projection.h"

namespace tempo::crypto {

/// Undoes the blinding of the worker's results for C = A·B under a MatmulKey (see
/// MatmulEncryptor for the encryption side):
///
///   decrypt:     C  = P_m^T  D_r^-1  C'  D_u^-1  P_n^T      C[a][b]  = C'[im(a)][in(b)] / (r u)
///   decrypt_da:  dA = P_m1^T D_r1^-1 dA' D_s     P_k^T      dA[a][b] = dA'[im1(a)][ik(b)] * s / r1
///   decrypt_db:  dB = P_k    D_s^-1  dB' D_u2^-1 P_n2^T     dB[a][b] = dB'[ik(a)][in2(b)] / (s u2)
///
/// where im = pi_m^-1 etc., and each scale is the one of the blinded position read. Each call is
/// one gather pass, OpenMP over rows. The key is held by reference and must outlive the decryptor.
class MatmulDecryptor {
 public:
  explicit MatmulDecryptor(const MatmulKey& key) : key_(key) {}

  /// C' = A'·B' [m,n] -> C = A·B. Throws std::invalid_argument on a shape that does not fit.
  /// With `projection`, also projects the rows of C' (for its integrity check, same pass).
  Tensor decrypt(const BlindedTensor& c, const RowProjection* projection = nullptr) const;
  /// dA' = dC'1 · B'^T [m,k] -> dA = dC · B^T, `da_rows` being the key given to
  /// encrypt_grad_for_da. `projection`: as for decrypt.
  Tensor decrypt_da(const BlindedTensor& da, const DimKey& da_rows,
                    const RowProjection* projection = nullptr) const;
  /// dB' = A'^T · dC'2 [k,n] -> dB = A^T · dC, `db_cols` being the key given to
  /// encrypt_grad_for_db.
  Tensor decrypt_db(const BlindedTensor& db, const DimKey& db_cols) const;

 private:
  const MatmulKey& key_;
};

}  // namespace tempo::crypto
