// One-call API for a blinded Linear-style product and its backward (what the offload engine uses).
#pragma once

#include <functional>
#include <optional>
#include <utility>

#include "common/blinded_tensor.h"
#include "master/core/tensor.h"
#include "master/crypto/key_generator.h"
#include "master/crypto/keys.h"
#include "master/crypto/row_projection.h"

namespace tempo::crypto {

/// Everything the master keeps for one offloaded product Y = X·W (X [m,k], W [k,n]) between its
/// forward and its backward: the fresh forward key, the blinded operands until they are sent, and
/// the shifted gradient keys (PROTOCOL.md sections 2 and 4). Movable, not copyable (keys are not
/// duplicated by accident). Not thread-safe; distinct objects are independent.
///
/// Worker-side products, in order:
///   1. Y'  = X' · W'               (forward; the worker caches X' and W' by handle)
///   2. dX' = dY'1 · W'^T           (matmul trans_b, cached W')
///   3. dW' = X'^T · dY'2           (matmul trans_a, cached X')
class MatmulForward {
 public:
  MatmulForward(const MatmulForward&) = delete;
  MatmulForward& operator=(const MatmulForward&) = delete;
  MatmulForward(MatmulForward&&) = default;
  MatmulForward& operator=(MatmulForward&&) = default;

  /// X' = D_r P_m X P_k D_s [m,k]: send to the worker (and have it cached for step 3).
  const BlindedTensor& x() const { return x_; }
  /// W' = D_s^-1 P_k^T W P_n D_u [k,n]: send to the worker (and have it cached for step 2).
  const BlindedTensor& w() const { return w_; }
  /// Drops the master's references to X' and W' once they are sent (the key stays).
  void release_operands() {
    x_ = BlindedTensor();
    w_ = BlindedTensor();
  }

  /// Y' [m,n] -> Y = X·W. With `projection`, also projects the rows of Y' for its integrity
  /// check in the same pass.
  Tensor decrypt(const BlindedTensor& y, const RowProjection* projection = nullptr) const;
  /// dY [m,n] -> dY'1, drawing the fresh row key (pi_b1, r1). Call before decrypt_dx.
  BlindedTensor encrypt_grad_for_dx(const Tensor& dy);
  /// dX' = dY'1 · W'^T [m,k] -> dX = dY·W^T. Throws std::logic_error before encrypt_grad_for_dx.
  /// `projection`: as for decrypt.
  Tensor decrypt_dx(const BlindedTensor& dx, const RowProjection* projection = nullptr) const;
  /// dY [m,n] -> dY'2, drawing the fresh column key (pi_o2, u2). Call before decrypt_dw.
  BlindedTensor encrypt_grad_for_dw(const Tensor& dy);
  /// dW' = X'^T · dY'2 [k,n] -> dW = X^T·dY. Throws std::logic_error before encrypt_grad_for_dw.
  Tensor decrypt_dw(const BlindedTensor& dw) const;
  /// {encrypt_grad_for_dx(dy), encrypt_grad_for_dw(dy)} in one pass over dY; the rows of dY'1 are
  /// projected by `project_dx` and those of dY'2 by `project_dw` as they are written (may be null:
  /// see MatmulEncryptor).
  std::pair<BlindedTensor, BlindedTensor> encrypt_grads(const Tensor& dy,
                                                        const RowProjection* project_dx = nullptr,
                                                        const RowProjection* project_dw = nullptr);

  const MatmulKey& key() const { return key_; }

 private:
  friend class MatmulObfuscator;
  MatmulForward(KeyGenerator keygen, MatmulKey key) : keygen_(keygen), key_(std::move(key)) {}

  KeyGenerator keygen_;
  MatmulKey key_;
  BlindedTensor x_, w_;
  std::optional<DimKey> dx_rows_, dw_cols_;
};

/// Blinds products Y = X·W (PROTOCOL.md section 2) with a fresh key per call.
///
///   MatmulObfuscator obf(params);
///   MatmulForward fw = obf.encrypt(x, w);      // fresh key; fw.x(), fw.w() go to the worker
///   Tensor y = fw.decrypt(worker_result);      // Y' = X'·W'
class MatmulObfuscator {
 public:
  explicit MatmulObfuscator(ObfuscationParams params = {}) : keygen_(params) {}

  /// Given W' once it is blinded, what to project X''s rows on while they are written (null:
  /// nothing); see integrity::PreparedCheck.
  using ProjectX = std::function<const RowProjection*(const BlindedTensor& w)>;

  /// Draws a fresh MatmulKey for X [m,k]·W [k,n] and encrypts both operands (W first, then X,
  /// whose rows `project_x` may have projected). Throws std::invalid_argument when the shapes do
  /// not chain.
  MatmulForward encrypt(const Tensor& x, const Tensor& w, const ProjectX& project_x = {}) const;

  const KeyGenerator& key_generator() const { return keygen_; }

 private:
  KeyGenerator keygen_;
};

}  // namespace tempo::crypto
