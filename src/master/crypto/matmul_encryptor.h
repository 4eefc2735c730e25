// Encryption of the operands of a matrix product and of its output gradient (sections 2 and 4).
#pragma once

#include <utility>

#include "common/blinded_tensor.h"
#include "master/core/tensor.h"
#include "master/crypto/keys.h"
#include "master/crypto/row_projection.h"

namespace tempo::crypto {

/// Blinds the operands of C = A·B (A m×k, B k×n) under a MatmulKey (pi_m, r ; pi_k, s ; pi_n, u),
/// and the output gradient dC for the backward pass with a shifted key (PROTOCOL.md section 4).
/// Entry-wise, with the gather convention of DimKey:
///
///   encrypt_a:            A'[i][j]   = r_i      * A[pi_m(i)][pi_k(j)]    * s_j
///   encrypt_b:            B'[j][l]   = 1/s_j    * B[pi_k(j)][pi_n(l)]    * u_l
///   encrypt_grad_for_da:  dC'1[i][l] = r1_i     * dC[pi_m1(i)][pi_n(l)]  / u_l   (pi_m1, r1 fresh)
///   encrypt_grad_for_db:  dC'2[i][l] = 1/r_i    * dC[pi_m(i)][pi_n2(l)]  * u2_l  (pi_n2, u2 fresh)
///
/// The worker then computes, on the operands it cached in the forward pass,
///   dA' = dC'1 · B'^T  (= D_r1 P_m1 dA P_k D_s^-1)   and   dB' = A'^T · dC'2  (= D_s P_k^T dB P_n2
///   D_u2),
/// which MatmulDecryptor turns into dA = dC·B^T and dB = A^T·dC. For a Linear layer Y = X·W these
/// are PROTOCOL.md's dX (A = X, pi_m = pi_b, pi_k = pi_i, pi_n = pi_o) and dW.
///
/// The key is held by reference and must outlive the encryptor. Every call is one gather pass
/// (read each input element once, write each output element once), OpenMP over rows. A
/// `projection` (may be null) projects each blinded row once written (RowProjection: what an
/// integrity check would otherwise read the blinded operand again for).
class MatmulEncryptor {
 public:
  explicit MatmulEncryptor(const MatmulKey& key) : key_(key) {}

  /// A [m,k] -> A' [m,k]. Throws std::invalid_argument on a shape that does not fit the key.
  BlindedTensor encrypt_a(const Tensor& a, const RowProjection* projection = nullptr) const;
  /// B [k,n] -> B' [k,n].
  BlindedTensor encrypt_b(const Tensor& b) const;
  /// dC [m,n] -> dC'1 [m,n] under (da_rows ; key.n with 1/u): the operand of dA' = dC'1 · B'^T.
  /// `da_rows` is a fresh DimKey of size m.
  BlindedTensor encrypt_grad_for_da(const Tensor& dc, const DimKey& da_rows) const;
  /// dC [m,n] -> dC'2 [m,n] under (key.m with 1/r ; db_cols): the operand of dB' = A'^T · dC'2.
  /// `db_cols` is a fresh DimKey of size n.
  BlindedTensor encrypt_grad_for_db(const Tensor& dc, const DimKey& db_cols) const;
  /// {encrypt_grad_for_da(dc, da_rows), encrypt_grad_for_db(dc, db_cols)} in one pass over dC,
  /// the rows of dC'1 projected by `project_da`, those of dC'2 by `project_db`.
  std::pair<BlindedTensor, BlindedTensor> encrypt_grads(
      const Tensor& dc, const DimKey& da_rows, const DimKey& db_cols,
      const RowProjection* project_da = nullptr, const RowProjection* project_db = nullptr) const;

 private:
  const MatmulKey& key_;
};

}  // namespace tempo::crypto
