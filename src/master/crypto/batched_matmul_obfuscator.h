// One-call API for a blinded batched product (attention).
#pragma once

#include <functional>
#include <utility>
#include <vector>

#include "common/blinded_tensor.h"
#include "master/core/tensor.h"
#include "master/crypto/key_generator.h"
#include "master/crypto/keys.h"
#include "master/crypto/row_projection.h"

namespace tempo::crypto {

/// One blinded batched product C[b] = op(A[b])·op(B[b]) without a backward (nothing is cached);
/// training uses BatchedMatmulForward, whose backward reuses the worker's cached operands.
/// Worker: C' = batched_matmul(A', B', trans_a, trans_b), same flags as the plaintext call.
class BatchedMatmulProduct {
 public:
  const BlindedTensor& a() const { return a_; }
  const BlindedTensor& b() const { return b_; }
  bool trans_a() const { return trans_a_; }
  bool trans_b() const { return trans_b_; }
  /// C' [batch, m, n] -> C.
  Tensor decrypt(const BlindedTensor& c) const;
  const BatchedMatmulKey& key() const { return key_; }

 private:
  friend class BatchedMatmulObfuscator;
  BatchedMatmulKey key_;
  BlindedTensor a_, b_;
  bool trans_a_ = false, trans_b_ = false;
};

/// What the master keeps for one batched product C[b] = A[b]·op(B[b]) whose blinded operands the
/// worker caches until its backward (attention: S = Q·K^T and O = A·V), the batched counterpart
/// of MatmulForward: per entry the forward key of BatchedMatmulKey and, in the backward, the key
/// shift of PROTOCOL.md section 4 with fresh per-entry keys, so only the output gradient travels.
///
/// Worker-side batched products, in order (A' [batch, m, k]; B' [batch, k, n], or [batch, n, k]
/// with trans_b):
///   1. C'  = A'·op(B')                                       (the worker caches A' and B')
///   2. dA' = dC'1·op(B')^T       (trans_b: no flag; else trans_b, cached B')
///   3. dB' = A'^T·dC'2, or with trans_b dC'2^T·A'            (trans_a, cached A')
class BatchedMatmulForward {
 public:
  BatchedMatmulForward(const BatchedMatmulForward&) = delete;
  BatchedMatmulForward& operator=(const BatchedMatmulForward&) = delete;
  BatchedMatmulForward(BatchedMatmulForward&&) = default;
  BatchedMatmulForward& operator=(BatchedMatmulForward&&) = default;

  /// A' (send to the worker, cached for step 3).
  const BlindedTensor& x() const { return x_; }
  /// B' (send to the worker, cached for step 2).
  const BlindedTensor& w() const { return w_; }
  bool trans_b() const { return trans_b_; }
  /// Drops the master's references to A' and B' once they are sent (the key stays).
  void release_operands() {
    x_ = BlindedTensor();
    w_ = BlindedTensor();
  }

  /// C' [batch, m, n] -> C. With `projection`, also projects the rows of every entry of C' for its
  /// integrity check in the same pass (RowProjection::entry). Encryptions' projections: see
  /// BatchedMatmulEncryptor.
  Tensor decrypt(const BlindedTensor& c, const RowProjection* projection = nullptr) const;
  /// dC [batch, m, n] -> dC'1, drawing a fresh row key per entry. Call before decrypt_dx.
  BlindedTensor encrypt_grad_for_dx(const Tensor& dc, const RowProjection* projection = nullptr);
  /// dA' [batch, m, k] -> dA = dC·op(B)^T. Throws std::logic_error before encrypt_grad_for_dx.
  /// `projection`: as for decrypt.
  Tensor decrypt_dx(const BlindedTensor& da, const RowProjection* projection = nullptr) const;
  /// dC -> dC'2, drawing a fresh column key per entry. Call before decrypt_dw.
  BlindedTensor encrypt_grad_for_dw(const Tensor& dc, const RowProjection* projection = nullptr);
  /// dB' -> dB (the layout of B). Throws std::logic_error before encrypt_grad_for_dw.
  Tensor decrypt_dw(const BlindedTensor& db) const;
  /// {encrypt_grad_for_dx(dc), encrypt_grad_for_dw(dc)} in one pass over dC, the rows of dC'1
  /// projected by `project_dx` and those of dC'2 by `project_dw` (may be null).
  std::pair<BlindedTensor, BlindedTensor> encrypt_grads(const Tensor& dc,
                                                        const RowProjection* project_dx = nullptr,
                                                        const RowProjection* project_dw = nullptr);

  const BatchedMatmulKey& key() const { return key_; }

 private:
  friend class BatchedMatmulObfuscator;
  BatchedMatmulForward(KeyGenerator keygen, BatchedMatmulKey key, bool trans_b)
      : keygen_(keygen), key_(std::move(key)), trans_b_(trans_b) {}
  void draw_dx_keys();
  void draw_dw_keys();

  KeyGenerator keygen_;
  BatchedMatmulKey key_;
  bool trans_b_;
  BlindedTensor x_, w_;
  std::vector<DimKey> dx_rows_, dw_cols_;
  bool dx_drawn_ = false, dw_drawn_ = false;
};

/// Blinds batched products with a fresh BatchedMatmulKey per call.
class BatchedMatmulObfuscator {
 public:
  explicit BatchedMatmulObfuscator(ObfuscationParams params = {}) : keygen_(params) {}

  /// A, B rank 3 with equal batch; op(A[b]) m×k, op(B[b]) k×n. Throws std::invalid_argument
  /// when they do not chain.
  BatchedMatmulProduct encrypt(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) const;
  /// Given B' once it is blinded, what to project A''s rows on while they are written (null:
  /// nothing); see integrity::PreparedCheck.
  using ProjectA = std::function<const RowProjection*(const BlindedTensor& b)>;

  /// The same for C[b] = A[b]·op(B[b]) whose operands the worker caches for the backward. B is
  /// blinded first, its stored rows projected by `project_b` (may be null), then A, whose rows
  /// `project_a` may have projected.
  BatchedMatmulForward encrypt_forward(const Tensor& a, const Tensor& b, bool trans_b,
                                       const RowProjection* project_b = nullptr,
                                       const ProjectA& project_a = {}) const;

 private:
  KeyGenerator keygen_;
};

}  // namespace tempo::crypto
