#include "master/crypto/patch_conv_encryptor.h"

#include <cmath>
#include <stdexcept>
#include <string>

#include "master/crypto/gather_map.h"
#include "master/crypto/patch_kernels.h"

namespace tempo::crypto {

namespace {
void expect_key_fits(const PatchConvKey& key, const ConvShape& s, const char* what) {
  if (key.m.size() != s.positions() || key.k.size() != s.patch() || key.n.size() != s.out_channels)
    throw std::invalid_argument(std::string(what) + ": key dimensions (" +
                                std::to_string(key.m.size()) + ", " + std::to_string(key.k.size()) +
                                ", " + std::to_string(key.n.size()) + ") do not fit the conv (" +
                                std::to_string(s.positions()) + ", " + std::to_string(s.patch()) +
                                ", " + std::to_string(s.out_channels) + ")");
}
}  // namespace

PatchConvEncryptor::PatchConvEncryptor(const PatchConvKey& key, const ConvShape& shape)
    : key_(key), shape_(shape) {
  expect_key_fits(key, shape, "PatchConvEncryptor");
}

BlindedTensor PatchConvEncryptor::encrypt_input(const Tensor& x) const {
  x.expect_shape(shape_.input_shape(), "PatchConvEncryptor::encrypt_input");
  BlindedTensor out = BlindedTensor::allocate({shape_.positions(), shape_.patch()});
  patch::im2col_blind(x.data(), shape_, GatherMap::decrypt(key_.m, ScalePower::kScale),
                      GatherMap::encrypt(key_.k, ScalePower::kScale), out.mutable_data());
  return out;
}

bool PatchConvEncryptor::project_input(const Tensor& x, const double* vecs, const double* vec_abs,
                                       int rounds, double* out, double* out_abs, int sigma,
                                       patch::ProjectionSums sums) const {
  x.expect_shape(shape_.input_shape(), "PatchConvEncryptor::project_input");
  // An entry of A' is x·r·s with |r·s| in [2^-2sigma, 2^2sigma]: it stays a normal, finite fp32
  // number (exact) when |x| is 0 or in [2^(2sigma-126), 2^(128-2sigma)).
  return patch::project_blinded_patches(
      x.data(), shape_, GatherMap::decrypt(key_.m, ScalePower::kScale),
      GatherMap::encrypt(key_.k, ScalePower::kScale), vecs, vec_abs, rounds, out, out_abs,
      std::ldexp(1.0, 2 * sigma - 126), std::ldexp(1.0, 128 - 2 * sigma), sums);
}

BlindedTensor PatchConvEncryptor::encrypt_weight(const Tensor& w) const {
  const char* what = "PatchConvEncryptor::encrypt_weight";
  w.expect_shape(shape_.weight_shape(), what);
  return blind(w.reshaped({shape_.out_channels, shape_.patch()}),
               GatherMap::encrypt(key_.n, ScalePower::kScale),
               GatherMap::encrypt(key_.k, ScalePower::kInverse), what);
}

BlindedTensor PatchConvEncryptor::encrypt_grad_for_dx(const Tensor& dy, const DimKey& dx_rows,
                                                      const RowProjection* projection) const {
  dy.expect_shape(shape_.output_shape(), "PatchConvEncryptor::encrypt_grad_for_dx");
  if (dx_rows.size() != shape_.positions())
    throw std::invalid_argument("PatchConvEncryptor::encrypt_grad_for_dx: row key size mismatch");
  BlindedTensor out = BlindedTensor::allocate({shape_.positions(), shape_.out_channels});
  patch::scatter_rows_from_nchw(
      dy.data(), shape_.batch, shape_.out_channels, shape_.out_h() * shape_.out_w(),
      GatherMap::decrypt(dx_rows, ScalePower::kScale),
      GatherMap::encrypt(key_.n, ScalePower::kInverse), out.mutable_data(), projection);
  return out;
}

BlindedTensor PatchConvEncryptor::encrypt_grad_for_dw(const Tensor& dy,
                                                      const DimKey& dw_out) const {
  dy.expect_shape(shape_.output_shape(), "PatchConvEncryptor::encrypt_grad_for_dw");
  if (dw_out.size() != shape_.out_channels)
    throw std::invalid_argument(
        "PatchConvEncryptor::encrypt_grad_for_dw: column key size mismatch");
  BlindedTensor out = BlindedTensor::allocate({shape_.positions(), shape_.out_channels});
  patch::scatter_rows_from_nchw(dy.data(), shape_.batch, shape_.out_channels,
                                shape_.out_h() * shape_.out_w(),
                                GatherMap::decrypt(key_.m, ScalePower::kInverse),
                                GatherMap::encrypt(dw_out, ScalePower::kScale), out.mutable_data());
  return out;
}

}  // namespace tempo::crypto
