#include "master/crypto/patch_conv_decryptor.h"

#include <stdexcept>
#include <string>

#include "master/crypto/gather_map.h"
#include "master/crypto/patch_kernels.h"

namespace tempo::crypto {

namespace {
void expect_matrix(const BlindedTensor& t, int64_t rows, int64_t cols, const char* what) {
  if (t.rank() != 2 || t.dim(0) != rows || t.dim(1) != cols)
    throw std::invalid_argument(std::string(what) + ": expected [" + std::to_string(rows) + ", " +
                                std::to_string(cols) + "], got " + t.shape().to_string());
}
}  // namespace

PatchConvDecryptor::PatchConvDecryptor(const PatchConvKey& key, const ConvShape& shape)
    : key_(key), shape_(shape) {
  if (key.m.size() != shape.positions() || key.k.size() != shape.patch() ||
      key.n.size() != shape.out_channels)
    throw std::invalid_argument("PatchConvDecryptor: key dimensions do not fit the conv");
}

Tensor PatchConvDecryptor::decrypt_output(const BlindedTensor& y,
                                          const RowProjection* projection) const {
  expect_matrix(y, shape_.positions(), shape_.out_channels, "PatchConvDecryptor::decrypt_output");
  Tensor out(shape_.output_shape());
  patch::gather_nchw_from_rows(
      y.data(), shape_.batch, shape_.out_channels, shape_.out_h() * shape_.out_w(),
      GatherMap::decrypt(key_.m, ScalePower::kInverse),
      GatherMap::decrypt(key_.n, ScalePower::kInverse), out.data(), projection);
  return out;
}

Tensor PatchConvDecryptor::decrypt_dx(const BlindedTensor& dp, const DimKey& dx_rows,
                                      const RowProjection* projection) const {
  expect_matrix(dp, shape_.positions(), shape_.patch(), "PatchConvDecryptor::decrypt_dx");
  if (dx_rows.size() != shape_.positions())
    throw std::invalid_argument("PatchConvDecryptor::decrypt_dx: row key size mismatch");
  Tensor dx = Tensor::zeros(shape_.input_shape());
  patch::unblind_col2im(dp.data(), shape_, GatherMap::decrypt(dx_rows, ScalePower::kInverse),
                        GatherMap::decrypt(key_.k, ScalePower::kScale), dx.data(), projection);
  return dx;
}

Tensor PatchConvDecryptor::decrypt_dw(const BlindedTensor& dw, const DimKey& dw_out) const {
  const char* what = "PatchConvDecryptor::decrypt_dw";
  expect_matrix(dw, shape_.out_channels, shape_.patch(), what);
  return unblind(dw, GatherMap::decrypt(dw_out, ScalePower::kInverse),
                 GatherMap::decrypt(key_.k, ScalePower::kInverse), what)
      .reshaped(shape_.weight_shape());
}

}  // namespace tempo::crypto
