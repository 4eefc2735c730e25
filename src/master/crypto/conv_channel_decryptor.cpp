#include "master/crypto/conv_channel_decryptor.h"

#include <stdexcept>
#include <string>

#include "master/crypto/gather_map.h"

namespace tempo::crypto {

namespace {
void expect_rank4(const BlindedTensor& t, const char* what) {
  if (t.rank() != 4)
    throw std::invalid_argument(std::string(what) + ": need a rank-4 tensor, got " +
                                t.shape().to_string());
}
}  // namespace

Tensor ConvChannelDecryptor::decrypt_output(const BlindedTensor& y) const {
  const char* what = "ConvChannelDecryptor::decrypt_output";
  expect_rank4(y, what);
  return unblind(y, GatherMap::decrypt(key_.batch, ScalePower::kInverse),
                 GatherMap::decrypt(key_.out_channels, ScalePower::kInverse), what);
}

Tensor ConvChannelDecryptor::decrypt_dx(const BlindedTensor& dx, const DimKey& dx_batch) const {
  const char* what = "ConvChannelDecryptor::decrypt_dx";
  expect_rank4(dx, what);
  return unblind(dx, GatherMap::decrypt(dx_batch, ScalePower::kInverse),
                 GatherMap::decrypt(key_.in_channels, ScalePower::kScale), what);
}

Tensor ConvChannelDecryptor::decrypt_dw(const BlindedTensor& dw, const DimKey& dw_out) const {
  const char* what = "ConvChannelDecryptor::decrypt_dw";
  expect_rank4(dw, what);
  return unblind(dw, GatherMap::decrypt(dw_out, ScalePower::kInverse),
                 GatherMap::decrypt(key_.in_channels, ScalePower::kInverse), what);
}

}  // namespace tempo::crypto
