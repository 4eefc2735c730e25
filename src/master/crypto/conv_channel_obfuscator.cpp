#include "master/crypto/conv_channel_obfuscator.h"

#include <stdexcept>

#include "master/crypto/conv_channel_decryptor.h"
#include "master/crypto/conv_channel_encryptor.h"

namespace tempo::crypto {

ConvChannelForward ConvChannelObfuscator::encrypt(const Tensor& x, const Tensor& w) const {
  if (x.rank() != 4 || w.rank() != 4 || x.dim(1) != w.dim(1))
    throw std::invalid_argument("ConvChannelObfuscator::encrypt: input " + x.shape().to_string() +
                                " and weight " + w.shape().to_string() + " do not match");
  ConvChannelForward fw(keygen_, keygen_.conv_channel_key(x.dim(0), x.dim(1), w.dim(0)));
  const ConvChannelEncryptor enc(fw.key_);
  fw.x_ = enc.encrypt_input(x);
  fw.w_ = enc.encrypt_weight(w);
  return fw;
}

Tensor ConvChannelForward::decrypt(const BlindedTensor& y) const {
  return ConvChannelDecryptor(key_).decrypt_output(y);
}

BlindedTensor ConvChannelForward::encrypt_grad_for_dx(const Tensor& dy) {
  dx_batch_ = keygen_.dim_key(key_.batch.size());
  return ConvChannelEncryptor(key_).encrypt_grad_for_dx(dy, *dx_batch_);
}

Tensor ConvChannelForward::decrypt_dx(const BlindedTensor& dx) const {
  if (!dx_batch_)
    throw std::logic_error("ConvChannelForward::decrypt_dx before encrypt_grad_for_dx");
  return ConvChannelDecryptor(key_).decrypt_dx(dx, *dx_batch_);
}

BlindedTensor ConvChannelForward::encrypt_grad_for_dw(const Tensor& dy) {
  dw_out_ = keygen_.dim_key(key_.out_channels.size());
  return ConvChannelEncryptor(key_).encrypt_grad_for_dw(dy, *dw_out_);
}

Tensor ConvChannelForward::decrypt_dw(const BlindedTensor& dw) const {
  if (!dw_out_) throw std::logic_error("ConvChannelForward::decrypt_dw before encrypt_grad_for_dw");
  return ConvChannelDecryptor(key_).decrypt_dw(dw, *dw_out_);
}

}  // namespace tempo::crypto
