#include "master/crypto/conv_channel_encryptor.h"

#include <stdexcept>
#include <string>

#include "master/crypto/gather_map.h"

namespace tempo::crypto {

namespace {
void expect_rank4(const Tensor& t, const char* what) {
  if (t.rank() != 4)
    throw std::invalid_argument(std::string(what) + ": need a rank-4 tensor, got " +
                                t.shape().to_string());
}
}  // namespace

BlindedTensor ConvChannelEncryptor::encrypt_input(const Tensor& x) const {
  const char* what = "ConvChannelEncryptor::encrypt_input";
  expect_rank4(x, what);
  return blind(x, GatherMap::encrypt(key_.batch, ScalePower::kScale),
               GatherMap::encrypt(key_.in_channels, ScalePower::kScale), what);
}

BlindedTensor ConvChannelEncryptor::encrypt_weight(const Tensor& w) const {
  const char* what = "ConvChannelEncryptor::encrypt_weight";
  expect_rank4(w, what);
  return blind(w, GatherMap::encrypt(key_.out_channels, ScalePower::kScale),
               GatherMap::encrypt(key_.in_channels, ScalePower::kInverse), what);
}

BlindedTensor ConvChannelEncryptor::encrypt_grad_for_dx(const Tensor& dy,
                                                        const DimKey& dx_batch) const {
  const char* what = "ConvChannelEncryptor::encrypt_grad_for_dx";
  expect_rank4(dy, what);
  return blind(dy, GatherMap::encrypt(dx_batch, ScalePower::kScale),
               GatherMap::encrypt(key_.out_channels, ScalePower::kInverse), what);
}

BlindedTensor ConvChannelEncryptor::encrypt_grad_for_dw(const Tensor& dy,
                                                        const DimKey& dw_out) const {
  const char* what = "ConvChannelEncryptor::encrypt_grad_for_dw";
  expect_rank4(dy, what);
  return blind(dy, GatherMap::encrypt(key_.batch, ScalePower::kInverse),
               GatherMap::encrypt(dw_out, ScalePower::kScale), what);
}

}  // namespace tempo::crypto
