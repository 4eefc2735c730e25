#include "master/crypto/batched_matmul_obfuscator.h"

#include <stdexcept>

#include "master/crypto/batched_matmul_decryptor.h"
#include "master/crypto/batched_matmul_encryptor.h"

namespace tempo::crypto {

BatchedMatmulProduct BatchedMatmulObfuscator::encrypt(const Tensor& a, const Tensor& b,
                                                      bool trans_a, bool trans_b) const {
  if (a.rank() != 3 || b.rank() != 3 || a.dim(0) != b.dim(0))
    throw std::invalid_argument(
        "BatchedMatmulObfuscator::encrypt: need rank-3 operands with "
        "equal batch, got " +
        a.shape().to_string() + " and " + b.shape().to_string());
  const int64_t m = trans_a ? a.dim(2) : a.dim(1), k = trans_a ? a.dim(1) : a.dim(2);
  const int64_t kb = trans_b ? b.dim(2) : b.dim(1), n = trans_b ? b.dim(1) : b.dim(2);
  if (k != kb)
    throw std::invalid_argument("BatchedMatmulObfuscator::encrypt: inner dimensions differ: " +
                                a.shape().to_string() + " and " + b.shape().to_string());
  BatchedMatmulProduct p;
  p.key_ = keygen_.batched_matmul_key(a.dim(0), m, k, n);
  p.trans_a_ = trans_a;
  p.trans_b_ = trans_b;
  const BatchedMatmulEncryptor enc(p.key_);
  p.a_ = enc.encrypt_a(a, trans_a);
  p.b_ = enc.encrypt_b(b, trans_b);
  return p;
}

Tensor BatchedMatmulProduct::decrypt(const BlindedTensor& c) const {
  return BatchedMatmulDecryptor(key_).decrypt(c);
}

}  // namespace tempo::crypto
