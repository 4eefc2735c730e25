#include "master/crypto/key_generator.h"

#include <omp.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "master/core/thread_team.h"

namespace tempo::crypto {

namespace {
// Key entries below which a batched key is drawn on the calling thread alone.
constexpr int64_t kParallelKeyEntries = 4096;

void check_dimension(int64_t n) {
  if (n < 0 || n >= 0x7fffffffLL)
    throw std::invalid_argument("KeyGenerator: dimension " + std::to_string(n) + " out of range");
}
}  // namespace

KeyGenerator::KeyGenerator(ObfuscationParams params) : params_(params) { params_.validate(); }

float KeyGenerator::draw_scale(bool with_sign) const {
  Csprng rng;
  return draw_scale(rng, with_sign);
}

float KeyGenerator::draw_scale(Csprng& rng, bool with_sign) const {
  float v = 1.0f;
  draw_scales(rng, &v, 1, with_sign, params_.distribution);
  return v;
}

void KeyGenerator::draw_scales(Csprng& rng, float* out, int64_t n, bool with_sign,
                               ScaleDistribution distribution) const {
  const int sigma = params_.sigma;
  if (sigma == 0) {
    std::fill(out, out + n, 1.0f);
  } else if (distribution == ScaleDistribution::kLogUniform) {
    for (int64_t i = 0; i < n; ++i)
      out[i] = static_cast<float>(std::exp2((2.0 * rng.uniform_unit() - 1.0) * sigma));
  } else {
    // The exponents, uniform on 2·sigma + 1 (power of two: -sigma..sigma) or 2·sigma (random
    // significand: -sigma..sigma-1) values, many per 64-bit draw (uniform_batch).
    const bool significand = distribution == ScaleDistribution::kRandomMantissa;
    const uint64_t values = 2 * static_cast<uint64_t>(sigma) + (significand ? 0 : 1);
    constexpr int64_t kChunk = 240;  // 16 draws of sigma 8's runs of 15 exponents
    uint64_t bounds[kChunk], exponents[kChunk];
    std::fill(std::begin(bounds), std::end(bounds), values);
    uint64_t word = 0;
    for (int64_t i = 0; i < n; i += kChunk) {
      const int64_t count = std::min(kChunk, n - i);
      rng.uniform_batch(bounds, static_cast<size_t>(count), exponents);
      for (int64_t j = 0; j < count; ++j) {
        const int e = static_cast<int>(exponents[j]) - sigma;
        // 2^e from its exponent bits (sigma <= 60 keeps it a normal float), with 23 random
        // significand bits when asked: two draws per 64-bit word (kChunk is even).
        uint32_t bits = static_cast<uint32_t>(127 + e) << 23;
        if (significand) {
          if (j % 2 == 0) word = rng.next_u64();
          bits |= static_cast<uint32_t>(word >> (j % 2 == 0 ? 0 : 32)) & 0x7FFFFFU;
        }
        out[i + j] = std::bit_cast<float>(bits);
      }
    }
  }
  if (!with_sign) return;
  for (int64_t i = 0; i < n; i += 64) {
    const uint64_t signs = rng.next_u64();
    for (int64_t j = 0; j < std::min<int64_t>(64, n - i); ++j)
      if ((signs >> j) & 1U) out[i + j] = -out[i + j];
  }
}

void KeyGenerator::fill(Csprng& rng, DimKey& k, bool with_sign, bool scaled,
                        ScaleDistribution distribution) const {
  const int64_t n = k.size();
  const std::span<int32_t> perm = k.perm();
  std::iota(perm.begin(), perm.end(), 0);
  rng.shuffle(perm.data(), n);
  const std::span<int32_t> inv_perm = k.inv_perm();
  for (int64_t i = 0; i < n; ++i)
    inv_perm[static_cast<size_t>(perm[static_cast<size_t>(i)])] = static_cast<int32_t>(i);
  const std::span<float> scale = k.scale(), inv_scale = k.inv_scale();
  if (scaled)
    draw_scales(rng, scale.data(), n, with_sign, distribution);
  else
    std::fill(scale.begin(), scale.end(), 1.0f);
  for (size_t i = 0; i < scale.size(); ++i) inv_scale[i] = 1.0f / scale[i];
}

DimKey KeyGenerator::dim_key(Csprng& rng, int64_t n, bool with_sign, bool scaled,
                             ScaleDistribution distribution) const {
  check_dimension(n);
  DimKey k(n);
  fill(rng, k, with_sign, scaled, distribution);
  return k;
}

DimKey KeyGenerator::permutation_key(int64_t n) const {
  Csprng rng;
  return dim_key(rng, n, false, false, params_.distribution);
}

DimKey KeyGenerator::dim_key(int64_t n, bool with_sign) const {
  Csprng rng;
  return dim_key(rng, n, with_sign, true, params_.distribution);
}

MatmulKey KeyGenerator::matmul_key(int64_t m, int64_t k, int64_t n) const {
  return matmul_key(m, k, n, params_.distribution);
}

MatmulKey KeyGenerator::matmul_key(int64_t m, int64_t k, int64_t n,
                                   ScaleDistribution operand_scales) const {
  Csprng rng;
  const ScaleDistribution d = params_.distribution;
  return MatmulKey{dim_key(rng, m, false, true, operand_scales),
                   dim_key(rng, k, params_.signed_inner_scale, true, operand_scales),
                   dim_key(rng, n, false, true, d)};
}

PatchConvKey KeyGenerator::patch_conv_key(int64_t positions, int64_t patch,
                                          int64_t out_channels) const {
  return matmul_key(positions, patch, out_channels, params_.patch_distribution);
}

void KeyGenerator::fill_all(std::span<DimKey> keys, std::span<const bool> signed_scale) const {
  const auto count = static_cast<int64_t>(keys.size());
  int64_t entries = 0;
  for (const DimKey& k : keys) entries += k.size();
  // Attention draws hundreds of small keys per product, several times per step: threads share
  // them, each with its own freshly keyed stream.
  const bool threaded = count > 1 && entries >= kParallelKeyEntries && !omp_in_parallel();
  run_on_team(threaded, [&](int64_t first, int64_t step) {
    Csprng rng;
    for (int64_t i = first; i < count; i += step)
      fill(rng, keys[static_cast<size_t>(i)],
           !signed_scale.empty() && signed_scale[static_cast<size_t>(i) % signed_scale.size()],
           true, params_.distribution);
  });
}

std::vector<DimKey> KeyGenerator::dim_keys(int64_t count, int64_t n) const {
  check_dimension(count);
  check_dimension(n);
  std::vector<DimKey> keys =
      DimKey::allocate_many(std::vector<int64_t>(static_cast<size_t>(count), n));
  fill_all(keys, {});
  return keys;
}

BatchedMatmulKey KeyGenerator::batched_matmul_key(int64_t batch, int64_t m, int64_t k,
                                                  int64_t n) const {
  for (int64_t d : {batch, m, k, n}) check_dimension(d);
  BatchedMatmulKey key;
  {
    Csprng rng;
    key.batch = dim_key(rng, batch, false, false, params_.distribution);
  }
  // All entries' keys in one allocation, [m, k, n] per entry; only k's scales are signed.
  std::vector<int64_t> sizes;
  sizes.reserve(static_cast<size_t>(3 * batch));
  for (int64_t b = 0; b < batch; ++b) sizes.insert(sizes.end(), {m, k, n});
  std::vector<DimKey> dims = DimKey::allocate_many(sizes);
  const bool signs[] = {false, params_.signed_inner_scale, false};
  fill_all(dims, signs);
  key.entries.reserve(static_cast<size_t>(batch));
  for (int64_t b = 0; b < batch; ++b)
    key.entries.push_back(MatmulKey{std::move(dims[static_cast<size_t>(3 * b)]),
                                    std::move(dims[static_cast<size_t>(3 * b + 1)]),
                                    std::move(dims[static_cast<size_t>(3 * b + 2)])});
  return key;
}

ConvChannelKey KeyGenerator::conv_channel_key(int64_t batch, int64_t in_channels,
                                              int64_t out_channels) const {
  Csprng rng;
  const ScaleDistribution d = params_.distribution;
  return ConvChannelKey{dim_key(rng, batch, false, true, d),
                        dim_key(rng, in_channels, params_.signed_inner_scale, true, d),
                        dim_key(rng, out_channels, false, true, d)};
}

}  // namespace tempo::crypto
