#include "master/crypto/batched_matmul_obfuscator.h"

#include <array>
#include <stdexcept>
#include <string>

#include "master/crypto/batched_matmul_decryptor.h"
#include "master/crypto/batched_matmul_encryptor.h"

namespace tempo::crypto {

namespace {
/// [m, k, n] of C = op(A)·op(B) per entry; throws when A and B are not a batched product.
std::array<int64_t, 3> batched_dims(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b,
                                    const char* what) {
  if (a.rank() != 3 || b.rank() != 3 || a.dim(0) != b.dim(0))
    throw std::invalid_argument(std::string(what) +
                                ": need rank-3 operands with equal batch, got " +
                                a.shape().to_string() + " and " + b.shape().to_string());
  const int64_t m = trans_a ? a.dim(2) : a.dim(1), k = trans_a ? a.dim(1) : a.dim(2);
  const int64_t kb = trans_b ? b.dim(2) : b.dim(1), n = trans_b ? b.dim(1) : b.dim(2);
  if (k != kb)
    throw std::invalid_argument(std::string(what) + ": inner dimensions differ: " +
                                a.shape().to_string() + " and " + b.shape().to_string());
  return {m, k, n};
}
}  // namespace

BatchedMatmulProduct BatchedMatmulObfuscator::encrypt(const Tensor& a, const Tensor& b,
                                                      bool trans_a, bool trans_b) const {
  const auto [m, k, n] = batched_dims(a, b, trans_a, trans_b, "BatchedMatmulObfuscator::encrypt");
  BatchedMatmulProduct p;
  p.key_ = keygen_.batched_matmul_key(a.dim(0), m, k, n);
  p.trans_a_ = trans_a;
  p.trans_b_ = trans_b;
  const BatchedMatmulEncryptor enc(p.key_);
  p.a_ = enc.encrypt_a(a, trans_a);
  p.b_ = enc.encrypt_b(b, trans_b);
  return p;
}

BatchedMatmulForward BatchedMatmulObfuscator::encrypt_forward(const Tensor& a, const Tensor& b,
                                                              bool trans_b,
                                                              const RowProjection* project_b,
                                                              const ProjectA& project_a) const {
  const auto [m, k, n] =
      batched_dims(a, b, false, trans_b, "BatchedMatmulObfuscator::encrypt_forward");
  BatchedMatmulForward fw(keygen_, keygen_.batched_matmul_key(a.dim(0), m, k, n), trans_b);
  const BatchedMatmulEncryptor enc(fw.key_);
  fw.w_ = enc.encrypt_b(b, trans_b, project_b);
  fw.x_ = enc.encrypt_a(a, false, project_a ? project_a(fw.w_) : nullptr);
  return fw;
}

Tensor BatchedMatmulForward::decrypt(const BlindedTensor& c,
                                     const RowProjection* projection) const {
  return BatchedMatmulDecryptor(key_).decrypt(c, projection);
}

void BatchedMatmulForward::draw_dx_keys() {
  dx_rows_ =
      keygen_.dim_keys(key_.batch.size(), key_.entries.empty() ? 0 : key_.entries[0].m.size());
  dx_drawn_ = true;
}

void BatchedMatmulForward::draw_dw_keys() {
  dw_cols_ =
      keygen_.dim_keys(key_.batch.size(), key_.entries.empty() ? 0 : key_.entries[0].n.size());
  dw_drawn_ = true;
}

BlindedTensor BatchedMatmulForward::encrypt_grad_for_dx(const Tensor& dc,
                                                        const RowProjection* projection) {
  draw_dx_keys();
  return BatchedMatmulEncryptor(key_).encrypt_grad_for_da(dc, dx_rows_, projection);
}

Tensor BatchedMatmulForward::decrypt_dx(const BlindedTensor& da,
                                        const RowProjection* projection) const {
  if (!dx_drawn_)
    throw std::logic_error("BatchedMatmulForward::decrypt_dx before encrypt_grad_for_dx");
  return BatchedMatmulDecryptor(key_).decrypt_da(da, dx_rows_, projection);
}

BlindedTensor BatchedMatmulForward::encrypt_grad_for_dw(const Tensor& dc,
                                                        const RowProjection* projection) {
  draw_dw_keys();
  return BatchedMatmulEncryptor(key_).encrypt_grad_for_db(dc, dw_cols_, projection);
}

std::pair<BlindedTensor, BlindedTensor> BatchedMatmulForward::encrypt_grads(
    const Tensor& dc, const RowProjection* project_dx, const RowProjection* project_dw) {
  draw_dx_keys();
  draw_dw_keys();
  return BatchedMatmulEncryptor(key_).encrypt_grads(dc, dx_rows_, dw_cols_, project_dx, project_dw);
}

Tensor BatchedMatmulForward::decrypt_dw(const BlindedTensor& db) const {
  if (!dw_drawn_)
    throw std::logic_error("BatchedMatmulForward::decrypt_dw before encrypt_grad_for_dw");
  return BatchedMatmulDecryptor(key_).decrypt_db(db, dw_cols_, trans_b_);
}

Tensor BatchedMatmulProduct::decrypt(const BlindedTensor& c) const {
  return BatchedMatmulDecryptor(key_).decrypt(c);
}

}  // namespace tempo::crypto
