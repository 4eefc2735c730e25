#include "master/crypto/matmul_obfuscator.h"

#include <stdexcept>

#include "master/crypto/matmul_decryptor.h"
#include "master/crypto/matmul_encryptor.h"

namespace tempo::crypto {

MatmulForward MatmulObfuscator::encrypt(const Tensor& x, const Tensor& w,
                                        const ProjectX& project_x) const {
  if (x.rank() != 2 || w.rank() != 2 || x.dim(1) != w.dim(0))
    throw std::invalid_argument("MatmulObfuscator::encrypt: shapes " + x.shape().to_string() +
                                " and " + w.shape().to_string() + " do not chain");
  MatmulForward fw(keygen_, keygen_.matmul_key(x.dim(0), x.dim(1), w.dim(1)));
  const MatmulEncryptor enc(fw.key_);
  fw.w_ = enc.encrypt_b(w);
  fw.x_ = enc.encrypt_a(x, project_x ? project_x(fw.w_) : nullptr);
  return fw;
}

Tensor MatmulForward::decrypt(const BlindedTensor& y, const RowProjection* projection) const {
  return MatmulDecryptor(key_).decrypt(y, projection);
}

BlindedTensor MatmulForward::encrypt_grad_for_dx(const Tensor& dy) {
  dx_rows_ = keygen_.dim_key(key_.m.size());
  return MatmulEncryptor(key_).encrypt_grad_for_da(dy, *dx_rows_);
}

Tensor MatmulForward::decrypt_dx(const BlindedTensor& dx, const RowProjection* projection) const {
  if (!dx_rows_) throw std::logic_error("MatmulForward::decrypt_dx before encrypt_grad_for_dx");
  return MatmulDecryptor(key_).decrypt_da(dx, *dx_rows_, projection);
}

BlindedTensor MatmulForward::encrypt_grad_for_dw(const Tensor& dy) {
  dw_cols_ = keygen_.dim_key(key_.n.size());
  return MatmulEncryptor(key_).encrypt_grad_for_db(dy, *dw_cols_);
}

std::pair<BlindedTensor, BlindedTensor> MatmulForward::encrypt_grads(
    const Tensor& dy, const RowProjection* project_dx, const RowProjection* project_dw) {
  dx_rows_ = keygen_.dim_key(key_.m.size());
  dw_cols_ = keygen_.dim_key(key_.n.size());
  return MatmulEncryptor(key_).encrypt_grads(dy, *dx_rows_, *dw_cols_, project_dx, project_dw);
}

Tensor MatmulForward::decrypt_dw(const BlindedTensor& dw) const {
  if (!dw_cols_) throw std::logic_error("MatmulForward::decrypt_dw before encrypt_grad_for_dw");
  return MatmulDecryptor(key_).decrypt_db(dw, *dw_cols_);
}

}  // namespace tempo::crypto
