// Decryption of a convolution's results in channel mode (PROTOCOL.md sections 3 and 4).
#pragma once

#include "common/blinded_tensor.h"
#include "master/core/tensor.h"
#include "master/crypto/keys.h"

namespace tempo::crypto {

/// Undoes channel-mode blinding (see ConvChannelEncryptor); with iN = pi_N^-1 etc.:
///
///   decrypt_output:  Y[a][o]  = Y'[iN(a)][iO(o)]    / (r u)
///   decrypt_dx:      dX[a][c] = dX'[iN1(a)][iC(c)]  * s / r1     (dX' = bwd_data(dY'1, W'))
///   decrypt_dw:      dW[o][c] = dW'[iO2(o)][iC(c)]  / (s u2)     (dW' = bwd_weights(X', dY'2))
///
/// each scale taken at the blinded position read. The key is held by reference and must outlive
/// the decryptor.
class ConvChannelDecryptor {
 public:
  explicit ConvChannelDecryptor(const ConvChannelKey& key) : key_(key) {}

  /// Y' [N,O,H',W'] -> Y. Throws std::invalid_argument on a shape that does not fit the key.
  Tensor decrypt_output(const BlindedTensor& y) const;
  /// dX' [N,C,H,W] -> dX, `dx_batch` the key given to encrypt_grad_for_dx.
  Tensor decrypt_dx(const BlindedTensor& dx, const DimKey& dx_batch) const;
  /// dW' [O,C,kh,kw] -> dW, `dw_out` the key given to encrypt_grad_for_dw.
  Tensor decrypt_dw(const BlindedTensor& dw, const DimKey& dw_out) const;

 private:
  const ConvChannelKey& key_;
};

}  // namespace tempo::crypto
