// Parameters of MM-obfuscation (PROTOCOL.md section 2): how scale vectors are drawn.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace tempo::crypto {

/// How the entries of a scale vector (r, s, u in PROTOCOL.md) are drawn.
enum class ScaleDistribution {
  /// 2^e with e uniform on the integers {-sigma, ..., sigma}. Scaling is then exact in IEEE
  /// floating point (barring overflow/underflow), so a blinded product decrypts to the plaintext
  /// product up to summation order only. The default.
  kPowerOfTwo,
  /// 2^x with x uniform on the real interval [-sigma, sigma]. Every multiplication rounds, so
  /// results carry an extra relative error of a few ulps. For comparison only.
  kLogUniform,
  /// 2^e·(1 + f/2^23), e uniform on {-sigma, ..., sigma-1} and f on {0, ..., 2^23-1}: a uniformly
  /// random fp32 significand, magnitudes in [2^-sigma, 2^sigma). A value and its scaled copies
  /// no longer share their significand bits (a power of two keeps them), at the price of a
  /// rounding per multiplication, as kLogUniform; drawn from random bits, without exp2.
  kRandomMantissa,
};

/// The name of a distribution as the command line spells it: "power-of-two", "log-uniform",
/// "random-mantissa".
inline const char* scale_distribution_name(ScaleDistribution d) {
  switch (d) {
    case ScaleDistribution::kPowerOfTwo:
      return "power-of-two";
    case ScaleDistribution::kLogUniform:
      return "log-uniform";
    case ScaleDistribution::kRandomMantissa:
      return "random-mantissa";
  }
  return "?";
}

/// The obfuscation parameters the master's policy exposes (PROTOCOL.md section 7).
///
/// Choice of the default sigma = 8: a blinded product carries the scale r_i * u_l of its output
/// entry, up to 2^(2*sigma) = 2^16 either way, and a blinded operand the scale r_i * s_j, also up
/// to 2^(+-16). fp32 (and bf16, which GPUs use in mixed precision) has normal exponents down to
/// 2^-126, so gradients as small as 2^-100 still stay normal after blinding, and nothing
/// overflows below 2^111 in magnitude. Larger sigma buys log2(2*sigma+1) bits per entry only
/// logarithmically (sigma=8: 4.09 bits, sigma=32: 6.02 bits) while eating into that exponent
/// headroom and, on a GPU in fp16/TF32-input mode, into the fp16 range (2^-14..2^15) entirely.
/// The permutations carry most of the key entropy anyway (section 6: log2(n!) bits per
/// dimension); the scales mainly stop a worker from reading magnitudes off entries directly.
struct ObfuscationParams {
  /// Scales lie in [2^-sigma, 2^sigma] in magnitude. 0 disables scaling (permutation only).
  int sigma = 8;
  ScaleDistribution distribution = ScaleDistribution::kPowerOfTwo;
  /// The inner-dimension scale s carries a uniformly random sign (PROTOCOL.md section 2).
  bool signed_inner_scale = true;
  /// The scales of patch mode's positions and patch columns (the r and s of X' = D_r·P·Patches·
  /// P·D_s; the output channels follow `distribution`). Random significands by default: im2col
  /// copies every input value into up to kh·kw patches, and under power-of-two scales those
  /// copies keep the value's significand bits, so a worker that groups X''s entries by them links
  /// every pair of overlapping patches, which gives back the spatial layout that patch mode is
  /// there to hide (docs/privacy.md, "Patch mode and significands").
  ScaleDistribution patch_distribution = ScaleDistribution::kRandomMantissa;

  /// Throws std::invalid_argument when sigma is outside [0, 60].
  void validate() const {
    if (sigma < 0 || sigma > 60)
      throw std::invalid_argument("ObfuscationParams: sigma must be in [0, 60], got " +
                                  std::to_string(sigma));
  }
};

}  // namespace tempo::crypto
