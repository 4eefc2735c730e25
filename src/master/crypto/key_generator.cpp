#include "master/crypto/key_generator.h"

#include <bit>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <stdexcept>
#include <string>

namespace tempo::crypto {

KeyGenerator::KeyGenerator(ObfuscationParams params) : params_(params) { params_.validate(); }

float KeyGenerator::draw_scale(bool with_sign) const {
  Csprng rng;
  return draw_scale(rng, with_sign);
}

float KeyGenerator::draw_scale(Csprng& rng, bool with_sign) const {
  float v = 1.0f;
  if (params_.sigma > 0) {
    if (params_.distribution == ScaleDistribution::kPowerOfTwo) {
      const int e = static_cast<int>(rng.uniform(static_cast<uint32_t>(2 * params_.sigma + 1))) -
                    params_.sigma;
      // 2^e built from its exponent bits: exact, and sigma <= 60 keeps it a normal float.
      v = std::bit_cast<float>(static_cast<uint32_t>(127 + e) << 23);
    } else {
      const double e = (2.0 * rng.uniform_unit() - 1.0) * params_.sigma;
      v = static_cast<float>(std::exp2(e));
    }
  }
  if (with_sign && rng.bit()) v = -v;
  return v;
}

DimKey KeyGenerator::dim_key(Csprng& rng, int64_t n, bool with_sign, bool scaled) const {
  if (n < 0 || n >= 0x7fffffffLL)
    throw std::invalid_argument("KeyGenerator: dimension " + std::to_string(n) + " out of range");
  DimKey k;
  const auto sz = static_cast<size_t>(n);
  k.perm.resize(sz);
  std::iota(k.perm.begin(), k.perm.end(), 0);
  rng.shuffle(k.perm.data(), n);
  k.inv_perm.resize(sz);
  for (size_t i = 0; i < sz; ++i)
    k.inv_perm[static_cast<size_t>(k.perm[i])] = static_cast<int32_t>(i);
  k.scale.resize(sz);
  k.inv_scale.resize(sz);
  for (size_t i = 0; i < sz; ++i) {
    k.scale[i] = scaled ? draw_scale(rng, with_sign) : 1.0f;
    k.inv_scale[i] = 1.0f / k.scale[i];
  }
  return k;
}

DimKey KeyGenerator::permutation_key(int64_t n) const {
  Csprng rng;
  return dim_key(rng, n, false, false);
}

DimKey KeyGenerator::dim_key(int64_t n, bool with_sign) const {
  Csprng rng;
  return dim_key(rng, n, with_sign, true);
}

MatmulKey KeyGenerator::matmul_key(int64_t m, int64_t k, int64_t n) const {
  Csprng rng;
  return MatmulKey{dim_key(rng, m, false, true), dim_key(rng, k, params_.signed_inner_scale, true),
                   dim_key(rng, n, false, true)};
}

BatchedMatmulKey KeyGenerator::batched_matmul_key(int64_t batch, int64_t m, int64_t k,
                                                  int64_t n) const {
  Csprng rng;
  BatchedMatmulKey key;
  key.batch = dim_key(rng, batch, false, false);
  key.entries.reserve(static_cast<size_t>(batch));
  for (int64_t b = 0; b < batch; ++b)
    key.entries.push_back(MatmulKey{dim_key(rng, m, false, true),
                                    dim_key(rng, k, params_.signed_inner_scale, true),
                                    dim_key(rng, n, false, true)});
  return key;
}

ConvChannelKey KeyGenerator::conv_channel_key(int64_t batch, int64_t in_channels,
                                              int64_t out_channels) const {
  Csprng rng;
  return ConvChannelKey{dim_key(rng, batch, false, true),
                        dim_key(rng, in_channels, params_.signed_inner_scale, true),
                        dim_key(rng, out_channels, false, true)};
}

}  // namespace tempo::crypto
