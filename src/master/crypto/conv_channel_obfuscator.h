// One-call API for a blinded convolution in channel mode and its backward.
#pragma once

#include <optional>

#include "common/blinded_tensor.h"
#include "master/core/tensor.h"
#include "master/crypto/key_generator.h"
#include "master/crypto/keys.h"

namespace tempo::crypto {

/// The master's state for one offloaded channel-mode convolution Y = conv(X, W) between forward
/// and backward (PROTOCOL.md sections 3 and 4). Movable, not copyable, not thread-safe.
///
/// Worker-side operations, in order (stride/padding as the plaintext conv):
///   1. Y'  = conv(X', W')                        (caches X' and W')
///   2. dX' = conv_backward_data(dY'1, W')        (cached W', output shape of X)
///   3. dW' = conv_backward_weights(X', dY'2)     (cached X', output shape of W)
class ConvChannelForward {
 public:
  ConvChannelForward(const ConvChannelForward&) = delete;
  ConvChannelForward& operator=(const ConvChannelForward&) = delete;
  ConvChannelForward(ConvChannelForward&&) = default;
  ConvChannelForward& operator=(ConvChannelForward&&) = default;

  /// X' [N,C,H,W].
  const BlindedTensor& x() const { return x_; }
  /// W' [O,C,kh,kw].
  const BlindedTensor& w() const { return w_; }
  void release_operands() {
    x_ = BlindedTensor();
    w_ = BlindedTensor();
  }

  /// Y' [N,O,H',W'] -> Y.
  Tensor decrypt(const BlindedTensor& y) const;
  /// dY -> dY'1 with a fresh batch key (pi_N1, r1).
  BlindedTensor encrypt_grad_for_dx(const Tensor& dy);
  /// dX' [N,C,H,W] -> dX. Throws std::logic_error before encrypt_grad_for_dx.
  Tensor decrypt_dx(const BlindedTensor& dx) const;
  /// dY -> dY'2 with a fresh output-channel key (pi_O2, u2).
  BlindedTensor encrypt_grad_for_dw(const Tensor& dy);
  /// dW' [O,C,kh,kw] -> dW. Throws std::logic_error before encrypt_grad_for_dw.
  Tensor decrypt_dw(const BlindedTensor& dw) const;

  const ConvChannelKey& key() const { return key_; }

 private:
  friend class ConvChannelObfuscator;
  ConvChannelForward(KeyGenerator keygen, ConvChannelKey key)
      : keygen_(keygen), key_(std::move(key)) {}

  KeyGenerator keygen_;
  ConvChannelKey key_;
  BlindedTensor x_, w_;
  std::optional<DimKey> dx_batch_, dw_out_;
};

/// Blinds convolutions in channel mode (the opt-in speed mode: spatial layout stays visible).
class ConvChannelObfuscator {
 public:
  explicit ConvChannelObfuscator(ObfuscationParams params = {}) : keygen_(params) {}

  /// Fresh ConvChannelKey; encrypts X [N,C,H,W] and W [O,C,kh,kw].
  /// Throws std::invalid_argument when the channel counts differ.
  ConvChannelForward encrypt(const Tensor& x, const Tensor& w) const;

 private:
  KeyGenerator keygen_;
};

}  // namespace tempo::crypto
