// Branch-free float exp and erf for the element-wise layers (GELU, softmax, cross-entropy).
//
// glibc's expf/erff are scalar calls unless the build uses -ffast-math, which this project does
// not; these inline versions are straight-line code that GCC vectorises with AVX2 (8 lanes), the
// same approach as PyTorch's Vectorized<float> kernels.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>

namespace tempo::nn::vec {

/// e^x, relative error below 2 ulp on [-87.3, 88.7]; 0 below that range (and for -inf), NaN for
/// NaN, saturates at about 3.3e38 above 88.7. Cephes' expf: x = n·ln2 + r with |r| <= ln2/2, a
/// degree-6 polynomial for e^r, then 2^n.
///
/// Written so that GCC vectorises it under the project's default -ftrapping-math: the range
/// clamps and fix-ups are integer operations on the bits. (Float compare-selects get split into
/// branches, one of them constant-folded, and the loop is then not if-converted.)
inline float exp(float x) {
  const uint32_t xb = std::bit_cast<uint32_t>(x);
  // Clamp x to [-87.3, 88.7] with integer arithmetic on its bits. Mapped to a signed int that
  // orders like the float (flip the magnitude bits of negatives), the clamp is a min and a max
  // written as bit-mask selects, which GCC neither turns into branches nor constant-folds per
  // path. Halving before subtracting avoids overflow; it only blurs the bound by one ulp.
  const int32_t xs = static_cast<int32_t>(xb);
  const int32_t m = xs ^ ((xs >> 31) & 0x7FFFFFFF);
  constexpr int32_t kHi = 0x42B16666;                                       // 88.7f
  constexpr int32_t kLo = static_cast<int32_t>(0xC2AE999Au ^ 0x7FFFFFFFu);  // -87.3f, mapped
  const int32_t below_hi = ((m >> 1) - (kHi >> 1)) >> 31;                   // all ones if m < kHi
  const int32_t m1 = (m & below_hi) | (kHi & ~below_hi);
  const int32_t below_lo = ((m1 >> 1) - (kLo >> 1)) >> 31;  // all ones if m1 < kLo
  const int32_t m2 = (kLo & below_lo) | (m1 & ~below_lo);
  const float xc = std::bit_cast<float>(m2 ^ ((m2 >> 31) & 0x7FFFFFFF));
  // Round to nearest via the 1.5·2^23 trick (vectorises, unlike nearbyint without -ffast-math).
  const float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const float r = (xc - n * 0.693359375f) - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float er = p * r * r + r + 1.0f;
  // 2^n built in two halves so that n = 128 (x near 88.7) does not overflow the exponent field.
  const int32_t ni = static_cast<int32_t>(n);
  const int32_t n1 = ni >> 1, n2 = ni - n1;
  const float y =
      er * std::bit_cast<float>((n1 + 127) << 23) * std::bit_cast<float>((n2 + 127) << 23);
  const uint32_t keep = xb > 0xC2AE999Au ? 0u : ~0u;  // x below -87.3f: result 0
  const uint32_t nan = (xb & 0x7FFFFFFFu) > 0x7F800000u ? 0x7FC00000u : 0u;
  return std::bit_cast<float>((std::bit_cast<uint32_t>(y) & keep) | nan);
}

/// erf(x) from e = exp(-x²) (A&S 7.1.26 needs that exponential; a caller that has it, such as
/// GELU's derivative, whose normal density is the same exponential, passes it in).
inline float erf_given_exp(float x, float e) {
  const float a = std::fabs(x);
  const float t = 1.0f / (1.0f + 0.3275911f * a);
  float p = 1.061405429f;
  p = p * t - 1.453152027f;
  p = p * t + 1.421413741f;
  p = p * t - 0.284496736f;
  p = p * t + 0.254829592f;
  const float y = 1.0f - p * t * e;
  return std::copysign(y, x);
}

/// erf(x), absolute error below 2e-7 (Abramowitz & Stegun 7.1.26, as PyTorch's AVX2 erf).
inline float erf(float x) { return erf_given_exp(x, vec::exp(-x * x)); }

}  // namespace tempo::nn::vec
