// Fresh keys from the CSPRNG.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "master/crypto/csprng.h"
#include "master/crypto/dim_key.h"
#include "master/crypto/keys.h"
#include "master/crypto/obfuscation_params.h"

namespace tempo::crypto {

/// Draws fresh, independent keys (PROTOCOL.md section 2: a key is fresh for every offloaded
/// forward product). Permutations are unbiased Fisher-Yates shuffles driven by a Csprng freshly
/// keyed from libsodium for every call; scales follow ObfuscationParams. Cheap to copy (holds only
/// the parameters); thread-safe.
class KeyGenerator {
 public:
  /// Throws std::invalid_argument for invalid parameters.
  explicit KeyGenerator(ObfuscationParams params = {});

  const ObfuscationParams& params() const { return params_; }

  /// A uniformly random permutation of [0, n) with scales drawn per the parameters; a random sign
  /// on each scale when `with_sign`. n must be in [0, 2^31 - 1).
  DimKey dim_key(int64_t n, bool with_sign = false) const;
  /// A uniformly random permutation with unit scales.
  DimKey permutation_key(int64_t n) const;
  /// One scale of params().distribution (power-of-two: 2^e, e uniform in {-sigma..sigma};
  /// log-uniform: e uniform real in [-sigma, sigma]; random-mantissa: see ScaleDistribution),
  /// negated with probability 1/2 when `with_sign`.
  float draw_scale(bool with_sign) const;
  /// The same, from a caller's stream (one Csprng serves a whole key).
  float draw_scale(Csprng& rng, bool with_sign) const;

  /// Key of A[m,k]·B[k,n]; the inner scale is signed when params().signed_inner_scale.
  MatmulKey matmul_key(int64_t m, int64_t k, int64_t n) const;
  /// `count` independent dim_key(n, false) in one allocation (the fresh per-entry keys of a
  /// batched product's backward).
  std::vector<DimKey> dim_keys(int64_t count, int64_t n) const;
  /// `batch` independent MatmulKeys plus a permutation of the batch index.
  BatchedMatmulKey batched_matmul_key(int64_t batch, int64_t m, int64_t k, int64_t n) const;
  /// Channel-mode conv key for N samples, C input and O output channels.
  ConvChannelKey conv_channel_key(int64_t batch, int64_t in_channels, int64_t out_channels) const;
  /// Patch-mode conv key: matmul_key(positions = N·H'·W', patch = C·kh·kw, out_channels), the
  /// positions' and patch columns' scales drawn from params().patch_distribution.
  PatchConvKey patch_conv_key(int64_t positions, int64_t patch, int64_t out_channels) const;

 private:
  /// matmul_key with the m and k scales from `operand_scales` (n's from params().distribution).
  MatmulKey matmul_key(int64_t m, int64_t k, int64_t n, ScaleDistribution operand_scales) const;
  DimKey dim_key(Csprng& rng, int64_t n, bool with_sign, bool scaled,
                 ScaleDistribution distribution) const;
  /// Draws a fresh permutation and scales into the storage of `key` (of any size).
  void fill(Csprng& rng, DimKey& key, bool with_sign, bool scaled,
            ScaleDistribution distribution) const;
  /// fill() of every key (scaled), on the thread team when there are many entries; key i has
  /// signed scales when signed_scale[i % signed_scale.size()] (none when it is empty).
  void fill_all(std::span<DimKey> keys, std::span<const bool> signed_scale) const;
  /// n scales of `distribution` (as draw_scale() draws them), several per 64-bit word.
  void draw_scales(Csprng& rng, float* out, int64_t n, bool with_sign,
                   ScaleDistribution distribution) const;

  ObfuscationParams params_;
};

}  // namespace tempo::crypto
