// Encryption of a convolution's operands in patch mode (PROTOCOL.md sections 3 and 4).
#pragma once

#include "common/blinded_tensor.h"
#include "master/core/tensor.h"
#include "master/crypto/conv_shape.h"
#include "master/crypto/keys.h"
#include "master/crypto/patch_kernels.h"
#include "master/crypto/row_projection.h"

namespace tempo::crypto {

/// Patch mode lowers Y = conv(X, W) to the product Y_mat = Patches · W_mat^T, where
/// Patches [M = N·H'·W', K = C·kh·kw] (row p = (n, y, x), column q = (c, i, j)) is the transposed
/// im2col of X, W_mat = W viewed as [O, K], and Y_mat [M, O] is Y in NHWC order; then section 2
/// applies with a PatchConvKey (pi_m, r ; pi_k, s ; pi_n, u). Spatial positions are permuted
/// together with the batch, so the worker sees no image structure.
///
///   encrypt_input:        A'[i][j]    = r_i      * Patches[pi_m(i)][pi_k(j)]  * s_j     [M, K]
///   encrypt_weight:       W'[l][j]    = u_l      * W_mat[pi_n(l)][pi_k(j)]    / s_j     [O, K]
///   encrypt_grad_for_dx:  dY'1[i][l]  = r1_i     * dY_mat[pi_m1(i)][pi_n(l)]  / u_l     [M, O]
///   encrypt_grad_for_dw:  dY'2[i][l]  = 1/r_i    * dY_mat[pi_m(i)][pi_n2(l)]  * u2_l    [M, O]
///
/// Worker (plain GEMMs on blinded matrices):
///   Y'  = A' · W'^T    (matmul, trans_b)            [M, O]
///   dP' = dY'1 · W'    (with the cached W')         [M, K]   -> PatchConvDecryptor::decrypt_dx
///   dW' = dY'2^T · A'  (trans_a, with the cached A') [O, K]   -> PatchConvDecryptor::decrypt_dw
///
/// encrypt_input is fused: it reads X in NCHW and writes A' directly (im2col, permutation and
/// scaling in one pass, never materialising the plaintext patch matrix); the gradient encryptions
/// read dY in NCHW and write the permuted [M, O] rows directly. The key is held by reference and
/// must outlive the encryptor.
class PatchConvEncryptor {
 public:
  /// Throws std::invalid_argument when the key's dimensions are not (positions, patch, O).
  PatchConvEncryptor(const PatchConvKey& key, const ConvShape& shape);

  /// X [N,C,H,W] -> A' [M, K].
  BlindedTensor encrypt_input(const Tensor& x) const;
  /// W [O,C,kh,kw] -> W' [O, K].
  BlindedTensor encrypt_weight(const Tensor& w) const;
  /// dY [N,O,H',W'] -> dY'1 [M, O], `dx_rows` a fresh DimKey of size M. `projection` (may be
  /// null): of dY'1's rows as they are written (integrity::PreparedCheck).
  BlindedTensor encrypt_grad_for_dx(const Tensor& dy, const DimKey& dx_rows,
                                    const RowProjection* projection = nullptr) const;
  /// dY [N,O,H',W'] -> dY'2 [M, O], `dw_out` a fresh DimKey of size O.
  BlindedTensor encrypt_grad_for_dw(const Tensor& dy, const DimKey& dw_out) const;

  /// The projections A'·v_r (r < rounds) and |A'|·v_abs of A' = encrypt_input(x), computed from
  /// x without forming A' (patch::project_blinded_patches), for the integrity checks: `vecs`
  /// [rounds][K], `vec_abs` [K], `out` [rounds][M], `out_abs` [M]. Equal to projecting A' (up to
  /// the summation order) when the key's scales are powers of two of magnitude at most 2^sigma
  /// and no entry of A' under- or overflows; returns false when the latter may have happened.
  /// `sums`: the rounding the caller's check allows (patch::ProjectionSums).
  bool project_input(const Tensor& x, const double* vecs, const double* vec_abs, int rounds,
                     double* out, double* out_abs, int sigma,
                     patch::ProjectionSums sums = patch::ProjectionSums::kDouble) const;

  const ConvShape& shape() const { return shape_; }

 private:
  const PatchConvKey& key_;
  ConvShape shape_;
};

}  // namespace tempo::crypto
