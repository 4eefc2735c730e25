// Decryption of a convolution's results in patch mode (PROTOCOL.md sections 3 and 4).
#pragma once

#include "common/blinded_tensor.h"
#include "master/core/tensor.h"
#include "master/crypto/conv_shape.h"
#include "master/crypto/keys.h"
#include "master/crypto/row_projection.h"

namespace tempo::crypto {

/// Undoes patch-mode blinding (see PatchConvEncryptor), with im = pi_m^-1 etc.:
///
///   decrypt_output:  Y[n][o][y][x] = Y'[im(n,y,x)][in(o)] / (r u)             Y'  [M, O]
///   decrypt_dx:      dX = col2im(dP), dP[p][q] = dP'[im1(p)][ik(q)] * s / r1  dP' [M, K]
///   decrypt_dw:      dW[o][q] = dW'[in2(o)][ik(q)] / (u2 s)                   dW' [O, K]
///
/// decrypt_output writes NCHW directly from the permuted NHWC rows, and decrypt_dx fuses the
/// decryption with col2im (one read of dP', accumulation into dX), so no plaintext patch matrix
/// is ever materialised. The key is held by reference and must outlive the decryptor.
class PatchConvDecryptor {
 public:
  /// Throws std::invalid_argument when the key's dimensions are not (positions, patch, O).
  PatchConvDecryptor(const PatchConvKey& key, const ConvShape& shape);

  /// Y' [M, O] -> Y [N,O,H',W']. With `projection`, also fills it from the rows of Y'.
  Tensor decrypt_output(const BlindedTensor& y, const RowProjection* projection = nullptr) const;
  /// dP' [M, K] -> dX [N,C,H,W], `dx_rows` the key given to encrypt_grad_for_dx. With
  /// `projection`, also fills it from the rows of dP' (for the integrity check, in the same pass).
  Tensor decrypt_dx(const BlindedTensor& dp, const DimKey& dx_rows,
                    const RowProjection* projection = nullptr) const;
  /// dW' [O, K] -> dW [O,C,kh,kw], `dw_out` the key given to encrypt_grad_for_dw.
  Tensor decrypt_dw(const BlindedTensor& dw, const DimKey& dw_out) const;

 private:
  const PatchConvKey& key_;
  ConvShape shape_;
};

}  // namespace tempo::crypto
