// Encryption of a convolution's operands in channel mode (PROTOCOL.md sections 3 and 4).
#pragma once

#include "common/blinded_tensor.h"
#include "master/core/tensor.h"
#include "master/crypto/keys.h"

namespace tempo::crypto {

/// Blinds Y = conv(X, W) (X [N,C,H,W], W [O,C,kh,kw]) at channel level under a ConvChannelKey
/// (pi_N, r ; pi_C, s ; pi_O, u). Whole spatial planes move and are scaled together:
///
///   encrypt_input:        X'[b][c]   = r_b  * s_c  * X[pi_N(b)][pi_C(c)]
///   encrypt_weight:       W'[o][c]   = u_o  / s_c  * W[pi_O(o)][pi_C(c)]
///   encrypt_grad_for_dx:  dY'1[b][o] = r1_b / u_o  * dY[pi_N1(b)][pi_O(o)]     (pi_N1, r1 fresh)
///   encrypt_grad_for_dw:  dY'2[b][o] = u2_o / r_b  * dY[pi_N(b)][pi_O2(o)]     (pi_O2, u2 fresh)
///
/// Worker: Y' = conv(X', W'); dX' = conv_backward_data(dY'1, cached W');
/// dW' = conv_backward_weights(cached X', dY'2). Any stride/padding: the spatial dims are
/// untouched. The key is held by reference and must outlive the encryptor. Plane copies, OpenMP
/// over planes.
class ConvChannelEncryptor {
 public:
  explicit ConvChannelEncryptor(const ConvChannelKey& key) : key_(key) {}

  /// X [N,C,H,W] -> X'. Throws std::invalid_argument on a shape that does not fit the key.
  BlindedTensor encrypt_input(const Tensor& x) const;
  /// W [O,C,kh,kw] -> W'.
  BlindedTensor encrypt_weight(const Tensor& w) const;
  /// dY [N,O,H',W'] -> dY'1, `dx_batch` a fresh DimKey of size N.
  BlindedTensor encrypt_grad_for_dx(const Tensor& dy, const DimKey& dx_batch) const;
  /// dY [N,O,H',W'] -> dY'2, `dw_out` a fresh DimKey of size O.
  BlindedTensor encrypt_grad_for_dw(const Tensor& dy, const DimKey& dw_out) const;

 private:
  const ConvChannelKey& key_;
};

}  // namespace tempo::crypto
