// One-call API for a blinded convolution in patch mode (the default mode) and its backward.
#pragma once

#include <optional>

#include "common/blinded_tensor.h"
#include "master/core/tensor.h"
#include "master/crypto/conv_shape.h"
#include "master/crypto/key_generator.h"
#include "master/crypto/keys.h"
#include "master/crypto/patch_kernels.h"
#include "master/crypto/row_projection.h"

namespace tempo::crypto {

/// The master's state for one offloaded patch-mode convolution Y = conv(X, W) between forward and
/// backward (PROTOCOL.md sections 3 and 4). M = N·H'·W' positions, K = C·kh·kw. Movable, not
/// copyable, not thread-safe.
///
/// Worker-side products (plain GEMMs; no conv on the worker in this mode), in order:
///   1. Y'  = X' · W'^T      matmul(trans_b)  [M,K]·[O,K]^T -> [M,O]   (caches X', W')
///   2. dP' = dY'1 · W'      matmul           [M,O]·[O,K]   -> [M,K]   (cached W')
///   3. dW' = dY'2^T · X'    matmul(trans_a)  [M,O]^T·[M,K] -> [O,K]   (cached X')
class PatchConvForward {
 public:
  PatchConvForward(const PatchConvForward&) = delete;
  PatchConvForward& operator=(const PatchConvForward&) = delete;
  PatchConvForward(PatchConvForward&&) = default;
  PatchConvForward& operator=(PatchConvForward&&) = default;

  /// X' = blinded patch matrix [M, K].
  const BlindedTensor& x() const { return x_; }
  /// W' = blinded weight matrix [O, K].
  const BlindedTensor& w() const { return w_; }
  void release_operands() {
    x_ = BlindedTensor();
    w_ = BlindedTensor();
  }

  /// For the integrity checks: X'·v_r (r < rounds) and |X'|·v_abs computed from the plaintext
  /// input `x` that X' was blinded from, reading x instead of the kh·kw times larger X'
  /// (PatchConvEncryptor::project_input). These are the sums of x·r·s exactly, not of X''s
  /// rounded entries: within input_projection_error() of X''s own. Returns false when an entry
  /// of x is so small or large that its blinded value may have under- or overflowed, and where
  /// reading X' is as fast (1x1 kernels, outputs narrower than 8). `sums`: the rounding the
  /// caller's check allows (patch::ProjectionSums; kSignLanes only for a B side on ±1 vectors).
  bool project_input(const Tensor& x, const double* vecs, const double* vec_abs, int rounds,
                     double* out, double* out_abs,
                     patch::ProjectionSums sums = patch::ProjectionSums::kDouble) const;
  /// How far project_input's sums (with these `sums`) may be from X''s own, relative to their
  /// absolute terms (integrity::ProductCheck's projection_error): 0 under power-of-two scales
  /// (X' = x·r·s exactly); otherwise each entry x·fl(r·s) rounds twice, (1 + u)^2 - 1 < 3u,
  /// u = 2^-24, and a B side's fp32 lanes round each product x·(s·v) once more: 4u.
  double input_projection_error(patch::ProjectionSums sums = patch::ProjectionSums::kDouble) const;

  /// Y' [M, O] -> Y [N,O,H',W']; with `projection`, also projects the rows of Y' for its
  /// integrity check in the same pass.
  Tensor decrypt(const BlindedTensor& y, const RowProjection* projection = nullptr) const;
  /// dY [N,O,H',W'] -> dY'1 [M, O] with a fresh position key (pi_m1, r1); `projection` (may be
  /// null) projects dY'1's rows as they are written.
  BlindedTensor encrypt_grad_for_dx(const Tensor& dy, const RowProjection* projection = nullptr);
  /// dP' [M, K] -> dX [N,C,H,W] (decrypt fused with col2im); with `projection`, also projects
  /// the rows of dP' for its integrity check in the same pass.
  Tensor decrypt_dx(const BlindedTensor& dp, const RowProjection* projection = nullptr) const;
  /// dY [N,O,H',W'] -> dY'2 [M, O] with a fresh output-channel key (pi_o2, u2).
  BlindedTensor encrypt_grad_for_dw(const Tensor& dy);
  /// dW' [O, K] -> dW [O,C,kh,kw].
  Tensor decrypt_dw(const BlindedTensor& dw) const;

  const PatchConvKey& key() const { return key_; }
  const ConvShape& shape() const { return shape_; }

 private:
  friend class PatchConvObfuscator;
  PatchConvForward(KeyGenerator keygen, PatchConvKey key, const ConvShape& shape)
      : keygen_(keygen), key_(std::move(key)), shape_(shape) {}

  KeyGenerator keygen_;
  PatchConvKey key_;
  ConvShape shape_;
  BlindedTensor x_, w_;
  std::optional<DimKey> dx_rows_, dw_out_;
};

/// Blinds convolutions in patch mode with a fresh key per call.
class PatchConvObfuscator {
 public:
  explicit PatchConvObfuscator(ObfuscationParams params = {}) : keygen_(params) {}

  /// Fresh PatchConvKey; fused im2col-encryption of X [N,C,H,W] and encryption of W [O,C,kh,kw].
  /// Throws std::invalid_argument when the shapes do not make a convolution.
  PatchConvForward encrypt(const Tensor& x, const Tensor& w, const nn::ConvGeometry& g) const;

 private:
  KeyGenerator keygen_;
};

}  // namespace tempo::crypto
