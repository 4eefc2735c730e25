#include "master/crypto/patch_conv_obfuscator.h"

#include <stdexcept>

#include "master/crypto/patch_conv_decryptor.h"
#include "master/crypto/patch_conv_encryptor.h"

namespace tempo::crypto {

PatchConvForward PatchConvObfuscator::encrypt(const Tensor& x, const Tensor& w,
                                              const nn::ConvGeometry& g) const {
  const ConvShape s = ConvShape::of(x.shape(), w.shape(), g);
  PatchConvForward fw(keygen_, keygen_.patch_conv_key(s.positions(), s.patch(), s.out_channels), s);
  const PatchConvEncryptor enc(fw.key_, s);
  fw.x_ = enc.encrypt_input(x);
  fw.w_ = enc.encrypt_weight(w);
  return fw;
}

bool PatchConvForward::project_input(const Tensor& x, const double* vecs, const double* vec_abs,
                                     int rounds, double* out, double* out_abs,
                                     patch::ProjectionSums sums) const {
  const ObfuscationParams& params = keygen_.params();
  // Worth it only where X' is much larger than X and output rows fill the kernel's 8-wide
  // tiles (measured: slower than reading X' for resnet18's 4x4 layer4, no gain for 1x1 convs).
  if (shape_.kh * shape_.kw < 4 || shape_.out_w() < 8) return false;
  // Random significands: a B side's fp32 lanes may round products (input_projection_error).
  if (sums == patch::ProjectionSums::kSignLanes &&
      params.patch_distribution != ScaleDistribution::kPowerOfTwo)
    sums = patch::ProjectionSums::kSignLanesRoundedProducts;
  return PatchConvEncryptor(key_, shape_)
      .project_input(x, vecs, vec_abs, rounds, out, out_abs, params.sigma, sums);
}

double PatchConvForward::input_projection_error(patch::ProjectionSums sums) const {
  if (keygen_.params().patch_distribution == ScaleDistribution::kPowerOfTwo) return 0.0;
  return sums == patch::ProjectionSums::kDouble ? 0x3p-24 : 0x4p-24;
}

Tensor PatchConvForward::decrypt(const BlindedTensor& y, const RowProjection* projection) const {
  return PatchConvDecryptor(key_, shape_).decrypt_output(y, projection);
}

BlindedTensor PatchConvForward::encrypt_grad_for_dx(const Tensor& dy,
                                                    const RowProjection* projection) {
  dx_rows_ = keygen_.dim_key(shape_.positions());
  return PatchConvEncryptor(key_, shape_).encrypt_grad_for_dx(dy, *dx_rows_, projection);
}

Tensor PatchConvForward::decrypt_dx(const BlindedTensor& dp,
                                    const RowProjection* projection) const {
  if (!dx_rows_) throw std::logic_error("PatchConvForward::decrypt_dx before encrypt_grad_for_dx");
  return PatchConvDecryptor(key_, shape_).decrypt_dx(dp, *dx_rows_, projection);
}

BlindedTensor PatchConvForward::encrypt_grad_for_dw(const Tensor& dy) {
  dw_out_ = keygen_.dim_key(shape_.out_channels);
  return PatchConvEncryptor(key_, shape_).encrypt_grad_for_dw(dy, *dw_out_);
}

Tensor PatchConvForward::decrypt_dw(const BlindedTensor& dw) const {
  if (!dw_out_) throw std::logic_error("PatchConvForward::decrypt_dw before encrypt_grad_for_dw");
  return PatchConvDecryptor(key_, shape_).decrypt_dw(dw, *dw_out_);
}

}  // namespace tempo::crypto
