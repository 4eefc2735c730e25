// The integrity checks' projections taken elsewhere than in a pass of their own (docs/integrity.md,
// "Where the projections come from"): patch mode's X' projected from the plaintext input, and
// the results (dP', Y', a Linear layer's Y' and dX') projected by the kernels that decrypt them.
// A Linear layer's and attention's operands are projected by the kernels that blind them
// (integrity::PreparedCheck). Each must equal the direct projection of the blinded tensor, and a
// check built on them must still accept honest and reject wrong results.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>
#include <vector>

#include "crypto_test_util.h"
#include "gradcheck.h"
#include "master/core/simd.h"
#include "master/crypto/crypto.h"
#include "master/crypto/patch_conv_encryptor.h"
#include "master/integrity/error_bound.h"
#include "master/integrity/prepared_check.h"
#include "master/integrity/product_check.h"
#include "master/integrity/projection.h"
#include "master/integrity/random_signs.h"

namespace tempo {
namespace {

using testing::random_tensor;
using testing::worker_gemm;

struct Case {
  Shape x, w;
  nn::ConvGeometry g;
};
// 3x3 same (output widths below, at and above the kernel's 8-wide tiles, odd heights), strided,
// non-square kernels with asymmetric padding, 1x1.
const std::vector<Case> kCases = {
    {{2, 3, 7, 5}, {4, 3, 3, 3}, {1, 1, 1, 1}},   {{2, 3, 9, 19}, {5, 3, 3, 3}, {1, 1, 1, 1}},
    {{3, 2, 12, 21}, {3, 2, 3, 3}, {2, 2, 1, 1}}, {{2, 2, 6, 11}, {3, 2, 2, 5}, {1, 2, 0, 2}},
    {{2, 4, 8, 8}, {6, 4, 1, 1}, {1, 1, 0, 0}},   {{1, 2, 16, 16}, {2, 2, 5, 3}, {1, 1, 2, 1}},
};

/// Power-of-two patch scales: X' is then exact, and the projection from the input equals
/// projecting X' up to the order of the double sums (the default random significands round X':
/// ScalesThatAreNotPowersOfTwoAreProjectedWithinTheirRounding).
crypto::ObfuscationParams power_of_two_patches() {
  crypto::ObfuscationParams p;
  p.patch_distribution = crypto::ScaleDistribution::kPowerOfTwo;
  return p;
}

/// A convolution's patch-mode shape, a fresh key for it, and the encryptor of its input (which
/// refers to the key: not copied or moved).
struct PatchSetup {
  PatchSetup(const Case& c, const crypto::KeyGenerator& keygen)
      : s(crypto::ConvShape::of(c.x, c.w, c.g)),
        key(keygen.patch_conv_key(s.positions(), s.patch(), s.out_channels)),
        enc(key, s) {}
  PatchSetup(const PatchSetup&) = delete;
  PatchSetup& operator=(const PatchSetup&) = delete;
  crypto::ConvShape s;
  crypto::PatchConvKey key;
  crypto::PatchConvEncryptor enc;
};

std::vector<double> random_vectors(int64_t n, Rng& rng) {
  std::vector<double> v(static_cast<size_t>(n));
  for (double& e : v) e = rng.normal();
  return v;
}

/// |a - b| within the rounding of two double sums of `terms` terms of magnitude `scale`, plus
/// `relative`·scale (a kernel's fp32 lanes).
void expect_same_projection(const std::vector<double>& got, const std::vector<double>& want,
                            const std::vector<double>& scale, int64_t terms,
                            double relative = 0.0) {
  ASSERT_EQ(got.size(), want.size());
  const double u = std::ldexp(1.0, -52) * static_cast<double>(terms + 2) + relative;
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_LE(std::fabs(got[i] - want[i]), u * scale[i % scale.size()]) << "entry " << i;
}

TEST(PatchInputProjection, EqualsProjectingTheBlindedPatchMatrix) {
  Rng rng(5);
  const crypto::KeyGenerator keygen(power_of_two_patches());
  for (const Case& c : kCases)
    for (int rounds : {1, 2, 5}) {
      SCOPED_TRACE(c.x.to_string() + " * " + c.w.to_string() + ", rounds " +
                   std::to_string(rounds));
      const PatchSetup setup(c, keygen);
      const crypto::ConvShape& s = setup.s;
      const int64_t m = s.positions(), k = s.patch();
      const crypto::PatchConvEncryptor& enc = setup.enc;
      const Tensor x = random_tensor(c.x, rng);
      const BlindedTensor xb = enc.encrypt_input(x);
      const std::vector<double> v = random_vectors(rounds * k, rng);
      // v_abs >= |v_r| for every round: want_abs then bounds the terms of every round's sums.
      std::vector<double> v_abs(static_cast<size_t>(k), 0.0);
      for (int r = 0; r < rounds; ++r)
        for (int64_t j = 0; j < k; ++j)
          v_abs[static_cast<size_t>(j)] =
              std::max(v_abs[static_cast<size_t>(j)], std::fabs(v[static_cast<size_t>(r * k + j)]));
      std::vector<double> want(static_cast<size_t>(rounds * m)), want_abs(static_cast<size_t>(m));
      integrity::project(xb.data(), m, k, false, v.data(), v_abs.data(), rounds, want.data(),
                         want_abs.data(), true);
      std::vector<double> got(want.size(), NAN), got_abs(want_abs.size(), NAN);
      ASSERT_TRUE(enc.project_input(x, v.data(), v_abs.data(), rounds, got.data(), got_abs.data(),
                                    keygen.params().sigma));
      // want_abs bounds every term's magnitude in both sums.
      expect_same_projection(got, want, want_abs, k);
      expect_same_projection(got_abs, want_abs, want_abs, k);
    }
}

/// The exact (long double) projections of the rows of xb [m, k] on `rounds` vectors v, and the
/// absolute sums |xb|·1, which are also every round's mass when v is ±1.
void exact_projections(const BlindedTensor& xb, const std::vector<double>& v, int rounds,
                       std::vector<long double>* sums, std::vector<long double>* abs_sums) {
  const int64_t m = xb.dim(0), k = xb.dim(1);
  sums->assign(static_cast<size_t>(rounds * m), 0.0L);
  abs_sums->assign(static_cast<size_t>(m), 0.0L);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < k; ++j) {
      const long double e = xb.data()[i * k + j];
      (*abs_sums)[static_cast<size_t>(i)] += std::fabs(e);
      for (int r = 0; r < rounds; ++r)
        (*sums)[static_cast<size_t>(r * m + i)] += e * v[static_cast<size_t>(r * k + j)];
    }
}

// X' as a check's B side (the check's ±1 vectors, ones as the absolute weights): AVX-512 sums it
// in fp32 lanes, within the bound the check allows for it, projection_relative_bound(K), on
// output widths around the 16-wide tiles, odd heights, both strides, chunks of 1 to 4 channels.
// The lanes really run (their sums differ from the double kernel's somewhere), and a weighted
// vector, or an A side, keeps the double kernel bit for bit.
TEST(PatchInputProjection, SignLanesForABSideStayWithinTheChecksBound) {
  const std::vector<Case> cases = {
      {{2, 16, 7, 16}, {3, 16, 3, 3}, {1, 1, 1, 1}},   // one full tile, 1 channel per chunk
      {{2, 64, 5, 20}, {4, 64, 3, 3}, {1, 1, 1, 1}},   // a partial second tile, 4 per chunk
      {{1, 24, 13, 40}, {2, 24, 3, 3}, {2, 2, 1, 1}},  // stride 2, 20 outputs wide
      {{2, 32, 9, 33}, {3, 32, 3, 3}, {1, 1, 1, 1}}};  // tiles of 16, 16 and 1
  Rng rng(12);
  crypto::Csprng csprng;
  const crypto::KeyGenerator keygen(power_of_two_patches());
  const int sigma = keygen.params().sigma;
  const bool lanes_expected = simd::avx512() && simd::gradual_underflow();
  for (const Case& c : cases)
    for (int rounds : {1, 2, 5}) {
      SCOPED_TRACE(c.x.to_string() + " * " + c.w.to_string() + ", rounds " +
                   std::to_string(rounds));
      const PatchSetup setup(c, keygen);
      const crypto::ConvShape& s = setup.s;
      const int64_t m = s.positions(), k = s.patch();
      const crypto::PatchConvEncryptor& enc = setup.enc;
      // A wide dynamic range, so that fp32 and double sums part somewhere.
      Tensor x = random_tensor(c.x, rng);
      for (int64_t e = 0; e < x.numel(); ++e)
        x[e] = std::ldexp(x[e], static_cast<int>(rng.uniform(-12.0f, 12.0f)));
      const BlindedTensor xb = enc.encrypt_input(x);
      const std::vector<double> signs = integrity::random_signs(csprng, rounds * k);
      const std::vector<double> ones(static_cast<size_t>(k), 1.0);
      std::vector<long double> exact, exact_abs;
      exact_projections(xb, signs, rounds, &exact, &exact_abs);
      std::vector<double> lanes(static_cast<size_t>(rounds * m)), lanes_abs(static_cast<size_t>(m));
      std::vector<double> dbl(lanes.size()), dbl_abs(lanes_abs.size());
      ASSERT_TRUE(enc.project_input(x, signs.data(), ones.data(), rounds, lanes.data(),
                                    lanes_abs.data(), sigma,
                                    crypto::patch::ProjectionSums::kSignLanes));
      ASSERT_TRUE(enc.project_input(x, signs.data(), ones.data(), rounds, dbl.data(),
                                    dbl_abs.data(), sigma));
      const long double bound = integrity::projection_relative_bound(k);
      bool parted = false;
      for (int64_t i = 0; i < m; ++i) {
        const long double mass = exact_abs[static_cast<size_t>(i)];
        ASSERT_LE(std::fabs(lanes_abs[static_cast<size_t>(i)] - mass), bound * mass) << "row " << i;
        for (int r = 0; r < rounds; ++r) {
          const auto e = static_cast<size_t>(r * m + i);
          ASSERT_LE(std::fabs(lanes[e] - exact[e]), bound * mass) << "row " << i << " round " << r;
          parted |= lanes[e] != dbl[e];
        }
      }
      EXPECT_EQ(parted, lanes_expected) << "fp32 lanes ran: " << parted;
      // Weighted vectors are no sign filters, even with entries exact in fp32 (whose products
      // would round): the double kernel's sums, bit for bit.
      std::vector<double> weighted = random_vectors(rounds * k, rng);
      for (double& e : weighted) e = static_cast<float>(e);
      std::vector<double> w_lanes(lanes.size()), w_dbl(lanes.size()), w_abs(lanes_abs.size());
      ASSERT_TRUE(enc.project_input(x, weighted.data(), ones.data(), rounds, w_lanes.data(),
                                    w_abs.data(), sigma,
                                    crypto::patch::ProjectionSums::kSignLanes));
      ASSERT_TRUE(enc.project_input(x, weighted.data(), ones.data(), rounds, w_dbl.data(),
                                    w_abs.data(), sigma));
      EXPECT_EQ(w_lanes, w_dbl);
      // Nor are powers of two whose products with small inputs would underflow fp32.
      std::vector<double> tiny = signs;
      for (double& e : tiny) e = std::ldexp(e, -100);
      ASSERT_TRUE(enc.project_input(x, tiny.data(), ones.data(), rounds, w_lanes.data(),
                                    w_abs.data(), sigma,
                                    crypto::patch::ProjectionSums::kSignLanes));
      ASSERT_TRUE(enc.project_input(x, tiny.data(), ones.data(), rounds, w_dbl.data(), w_abs.data(),
                                    sigma));
      EXPECT_EQ(w_lanes, w_dbl);
    }
}

// The fp32 chains stay short enough for the bound on sums built to lose the most: no scales, so
// that the lanes add the taps as given, channel 0 large and every later term just under half an
// ulp of the running sum, so that each addition drops nearly all of it. A lane that added all
// K = 576 taps in one chain would miss by ~500 units of 2^-24 of the mass; the bound is ~41.
TEST(PatchInputProjection, SignLanesUnderRandomSignificandsStayWithinTheirRoundedBound) {
  // Random-significand keys: the products x·(s·v) in the B side's fp32 lanes round once each, on
  // top of X''s own two roundings; the check budgets input_projection_error(kSignLanes) = 4u for
  // both (and 3u for the double kernel's sums of the unrounded x·r·s).
  const std::vector<Case> cases = {{{2, 16, 7, 16}, {3, 16, 3, 3}, {1, 1, 1, 1}},
                                   {{2, 64, 5, 20}, {4, 64, 3, 3}, {1, 1, 1, 1}},
                                   {{1, 24, 13, 40}, {2, 24, 3, 3}, {2, 2, 1, 1}}};
  Rng rng(13);
  crypto::Csprng csprng;
  const crypto::PatchConvObfuscator obf;  // the default keys
  const bool lanes_expected = simd::avx512() && simd::gradual_underflow();
  const auto lanes_sums = crypto::patch::ProjectionSums::kSignLanes;
  for (const Case& c : cases)
    for (int rounds : {1, 3}) {
      SCOPED_TRACE(c.x.to_string() + " * " + c.w.to_string() + ", rounds " +
                   std::to_string(rounds));
      Tensor x = random_tensor(c.x, rng);
      for (int64_t e = 0; e < x.numel(); ++e)
        x[e] = std::ldexp(x[e], static_cast<int>(rng.uniform(-12.0f, 12.0f)));
      const crypto::PatchConvForward fw = obf.encrypt(x, random_tensor(c.w, rng), c.g);
      const int64_t m = fw.shape().positions(), k = fw.shape().patch();
      const std::vector<double> signs = integrity::random_signs(csprng, rounds * k);
      const std::vector<double> ones(static_cast<size_t>(k), 1.0);
      std::vector<long double> exact, exact_abs;
      exact_projections(fw.x(), signs, rounds, &exact, &exact_abs);
      std::vector<double> lanes(static_cast<size_t>(rounds * m)), lanes_abs(static_cast<size_t>(m));
      std::vector<double> dbl(lanes.size()), dbl_abs(lanes_abs.size());
      ASSERT_TRUE(fw.project_input(x, signs.data(), ones.data(), rounds, lanes.data(),
                                   lanes_abs.data(), lanes_sums));
      ASSERT_TRUE(
          fw.project_input(x, signs.data(), ones.data(), rounds, dbl.data(), dbl_abs.data()));
      const long double p = integrity::projection_relative_bound(k);
      const long double e_lanes = fw.input_projection_error(lanes_sums);
      const long double e_double = fw.input_projection_error();
      EXPECT_EQ(e_lanes, 0x4p-24L);
      bool parted = false;
      for (int64_t i = 0; i < m; ++i) {
        const long double mass = exact_abs[static_cast<size_t>(i)];
        ASSERT_GE(lanes_abs[static_cast<size_t>(i)], (1 - e_lanes) * (1 - p) * mass) << i;
        for (int r = 0; r < rounds; ++r) {
          const auto at = static_cast<size_t>(r * m + i);
          ASSERT_LE(std::fabs(lanes[at] - exact[at]), (p + e_lanes) * mass) << i << ", " << r;
          ASSERT_LE(std::fabs(dbl[at] - exact[at]), (0x1p-50L * k + e_double) * mass) << i;
          parted |= lanes[at] != dbl[at];
        }
      }
      EXPECT_EQ(parted, lanes_expected) << "fp32 lanes ran: " << parted;
    }
}

TEST(PatchInputProjection, SignLanesKeepTheirChainsWithinTheBoundOnAdversarialSums) {
  if (!simd::avx512() || !simd::gradual_underflow()) GTEST_SKIP() << "no AVX-512 fp32 lanes here";
  crypto::ObfuscationParams params = power_of_two_patches();
  params.sigma = 0;  // no scales: the filters are the signs themselves
  params.signed_inner_scale = false;
  const crypto::KeyGenerator keygen(params);
  const Case c{{1, 64, 4, 16}, {2, 64, 3, 3}, {1, 1, 1, 1}};
  const PatchSetup setup(c, keygen);
  const crypto::ConvShape& s = setup.s;
  const int64_t m = s.positions(), k = s.patch();
  const crypto::PatchConvEncryptor& enc = setup.enc;
  Tensor x(c.x);
  const int64_t plane = c.x[2] * c.x[3];
  // Channel 0's taps sum to at most 72, whose ulp is 2^-17: later terms of 2^-18·(1 - 2^-8) are
  // lost in fp32, one after the other.
  for (int64_t e = 0; e < x.numel(); ++e)
    x[e] = e < plane ? 8.0f : std::ldexp(1.0f - std::ldexp(1.0f, -8), -18);
  const std::vector<double> ones(static_cast<size_t>(k), 1.0);
  std::vector<double> lanes(static_cast<size_t>(m)), lanes_abs(lanes.size());
  ASSERT_TRUE(enc.project_input(x, ones.data(), ones.data(), 1, lanes.data(), lanes_abs.data(),
                                params.sigma, crypto::patch::ProjectionSums::kSignLanes));
  std::vector<long double> exact, exact_abs;
  exact_projections(enc.encrypt_input(x), ones, 1, &exact, &exact_abs);
  const long double bound = integrity::projection_relative_bound(k);
  long double worst = 0;
  for (int64_t i = 0; i < m; ++i) {
    const auto e = static_cast<size_t>(i);
    worst = std::max(worst, std::fabs(lanes[e] - exact[e]) / exact_abs[e]);
  }
  EXPECT_LE(worst, bound);
  EXPECT_GT(worst, 0.1L * bound);  // the sums do lose: the case tests what it means to
}

// Inputs near the top of the range a small sigma allows: the fp32 sums of a chunk overflow, and
// those images are redone in double: finite sums, equal to the double kernel's.
TEST(PatchInputProjection, SignLanesThatOverflowAreRedoneInDouble) {
  crypto::ObfuscationParams params = power_of_two_patches();
  params.sigma = 1;  // inputs up to 2^126, blinded terms up to 2^127: two of them overflow fp32
  const crypto::KeyGenerator keygen(params);
  const Case c{{2, 16, 4, 16}, {3, 16, 3, 3}, {1, 1, 1, 1}};
  const PatchSetup setup(c, keygen);
  const crypto::ConvShape& s = setup.s;
  const int64_t m = s.positions(), k = s.patch();
  const crypto::PatchConvEncryptor& enc = setup.enc;
  crypto::Csprng csprng;
  Tensor x(c.x);
  for (int64_t e = 0; e < x.numel(); ++e) x[e] = std::ldexp(1.5f, 124);
  const std::vector<double> signs = integrity::random_signs(csprng, k);
  const std::vector<double> ones(static_cast<size_t>(k), 1.0);
  std::vector<double> lanes(static_cast<size_t>(m)), lanes_abs(lanes.size());
  std::vector<double> dbl(lanes.size()), dbl_abs(lanes.size());
  ASSERT_TRUE(enc.project_input(x, signs.data(), ones.data(), 1, lanes.data(), lanes_abs.data(),
                                params.sigma, crypto::patch::ProjectionSums::kSignLanes));
  ASSERT_TRUE(
      enc.project_input(x, signs.data(), ones.data(), 1, dbl.data(), dbl_abs.data(), params.sigma));
  for (int64_t i = 0; i < m; ++i) ASSERT_TRUE(std::isfinite(lanes_abs[static_cast<size_t>(i)]));
  EXPECT_GT(*std::max_element(lanes_abs.begin(), lanes_abs.end()), 1e39);  // past FLT_MAX
  EXPECT_EQ(lanes, dbl);
  EXPECT_EQ(lanes_abs, dbl_abs);
}

TEST(PatchInputProjection, RefusesInputsWhoseBlindedValuesMayUnderOrOverflow) {
  const Case c = kCases[1];
  const crypto::KeyGenerator keygen(power_of_two_patches());
  const PatchSetup setup(c, keygen);
  const crypto::ConvShape& s = setup.s;
  const crypto::PatchConvEncryptor& enc = setup.enc;
  const int sigma = keygen.params().sigma;
  const std::vector<double> v(static_cast<size_t>(s.patch()), 1.0);
  std::vector<double> out(static_cast<size_t>(s.positions())), out_abs(out.size());
  Rng rng(6);
  for (float bad : {1e-36f, 1e36f, std::numeric_limits<float>::infinity(),
                    std::numeric_limits<float>::quiet_NaN()}) {
    Tensor x = random_tensor(c.x, rng);
    x[x.numel() / 2] = bad;
    EXPECT_FALSE(enc.project_input(x, v.data(), v.data(), 1, out.data(), out_abs.data(), sigma))
        << bad;
  }
  Tensor zeros = Tensor::zeros(c.x);  // exact zeros are fine
  EXPECT_TRUE(enc.project_input(zeros, v.data(), v.data(), 1, out.data(), out_abs.data(), sigma));
}

TEST(PatchInputProjection, ScalesThatAreNotPowersOfTwoAreProjectedWithinTheirRounding) {
  // The projection from x sums x·r·s exactly; X' holds x·fl(r·s) rounded to fp32, two roundings
  // per entry: within input_projection_error() = 3u of the absolute terms (and 0 for powers of
  // two, whose X' is exact).
  const double u = std::ldexp(1.0, -24);
  EXPECT_EQ(crypto::PatchConvObfuscator(power_of_two_patches())
                .encrypt(Tensor::zeros(kCases[1].x), Tensor::zeros(kCases[1].w), kCases[1].g)
                .input_projection_error(),
            0.0);
  crypto::ObfuscationParams log_uniform;
  log_uniform.patch_distribution = crypto::ScaleDistribution::kLogUniform;
  Rng rng(7);
  for (const crypto::ObfuscationParams& params : {crypto::ObfuscationParams{}, log_uniform})
    for (const Case& c : {kCases[1], kCases[2], kCases[5]}) {
      SCOPED_TRACE(c.x.to_string() + " * " + c.w.to_string() + ", " +
                   crypto::scale_distribution_name(params.patch_distribution));
      const Tensor x = random_tensor(c.x, rng), w = random_tensor(c.w, rng);
      const crypto::PatchConvForward fw = crypto::PatchConvObfuscator(params).encrypt(x, w, c.g);
      const double e = fw.input_projection_error();
      EXPECT_EQ(e, 3 * u);
      const auto s = fw.shape();
      const int64_t m = s.positions(), k = s.patch();
      const std::vector<double> v = random_vectors(k, rng);
      std::vector<double> v_abs(v.size());
      for (size_t j = 0; j < v.size(); ++j) v_abs[j] = std::fabs(v[j]);
      std::vector<double> out(static_cast<size_t>(m)), out_abs(out.size());
      ASSERT_TRUE(fw.project_input(x, v.data(), v_abs.data(), 1, out.data(), out_abs.data()));
      double worst_beyond_double = 0.0;
      for (int64_t i = 0; i < m; ++i) {
        long double exact = 0, mass = 0;
        for (int64_t j = 0; j < k; ++j) {
          const long double a = fw.x().data()[i * k + j];
          exact += a * v[static_cast<size_t>(j)];
          mass += std::fabs(a) * v_abs[static_cast<size_t>(j)];
        }
        const double in_double = std::ldexp(1.0, -52) * static_cast<double>(k + 2) * mass;
        const double deviation =
            std::fabs(out[static_cast<size_t>(i)] - static_cast<double>(exact));
        ASSERT_LE(deviation, e * static_cast<double>(mass) + in_double) << "row " << i;
        ASSERT_GE(out_abs[static_cast<size_t>(i)],
                  (1.0 - e) * static_cast<double>(mass) - in_double)
            << "row " << i;
        if (mass > 0) worst_beyond_double = std::max(worst_beyond_double, deviation / in_double);
      }
      // The scaling's rounding is real: well beyond the double sums' own.
      EXPECT_GT(worst_beyond_double, 10.0);
    }
}

/// Adds to entry `index` of a matrix the absolute sum of its row plus one: an error far above any
/// tolerance whatever the blinding scales of that row (a fixed offset could fall below it).
void corrupt(BlindedTensor& t, int64_t index) {
  const int64_t cols = t.dim(1), row = index / cols;
  double mass = 1.0;
  for (int64_t j = 0; j < cols; ++j) mass += std::fabs(t.data()[row * cols + j]);
  t.mutable_data()[index] += static_cast<float>(mass);
}

/// X' projected from the plaintext, for ProductCheck.
integrity::OperandProjection projection_of(const crypto::PatchConvForward& fw, const Tensor& x) {
  return [&fw, &x](const double* v, const double* v_abs, int rounds, double* out, double* out_abs) {
    return fw.project_input(x, v, v_abs, rounds, out, out_abs);
  };
}

/// Forward and backward-weights checks that take X''s side from the input accept honest results
/// and reject corrupted ones, under the parameters' patch scales.
void expect_checks_built_on_input_projection_work(const crypto::ObfuscationParams& params) {
  Rng rng(8);
  const crypto::PatchConvObfuscator obf(params);
  const Case c = kCases[1];
  const Tensor x = random_tensor(c.x, rng), w = random_tensor(c.w, rng);
  crypto::PatchConvForward fw = obf.encrypt(x, w, c.g);
  const auto s = fw.shape();
  const Tensor dy = random_tensor(s.output_shape(), rng);
  const integrity::OperandProjection from_x = projection_of(fw, x);
  {  // it answers (else the checks below would read X' and test nothing of it)
    const std::vector<double> ones(static_cast<size_t>(s.patch()), 1.0);
    std::vector<double> out(static_cast<size_t>(s.positions())), out_abs(out.size());
    ASSERT_TRUE(from_x(ones.data(), ones.data(), 1, out.data(), out_abs.data()));
  }

  // Forward: Y' = X'·W'ᵀ, X' the left operand.
  BlindedTensor y = worker_gemm(fw.x(), fw.w(), false, true);
  const double e = fw.input_projection_error();
  const integrity::ProductCheck forward(fw.x(), fw.w(), false, true, 1, integrity::Precision::kFp32,
                                        from_x, {}, {}, e);
  EXPECT_TRUE(forward.verify(y).passed);
  corrupt(y, 7);
  EXPECT_FALSE(forward.verify(y).passed);

  // Backward-weights: dW' = dY'2ᵀ·X', X' the right operand.
  const BlindedTensor g2 = fw.encrypt_grad_for_dw(dy);
  BlindedTensor dw = worker_gemm(g2, fw.x(), true, false);
  const integrity::ProductCheck weights(g2, fw.x(), true, false, 2, integrity::Precision::kFp32, {},
                                        from_x, {}, e);
  EXPECT_TRUE(weights.verify(dw).passed);
  corrupt(dw, 3);
  EXPECT_FALSE(weights.verify(dw).passed);

  // A projection that declines leaves the check to read the operand itself.
  const integrity::OperandProjection declines = [](const double*, const double*, int, double*,
                                                   double*) { return false; };
  const BlindedTensor y2 = worker_gemm(fw.x(), fw.w(), false, true);
  EXPECT_TRUE(
      integrity::ProductCheck(fw.x(), fw.w(), false, true, 1, integrity::Precision::kFp32, declines)
          .verify(y2)
          .passed);
}

TEST(PatchInputProjection, ChecksBuiltOnItAcceptHonestAndRejectWrongResults) {
  expect_checks_built_on_input_projection_work(power_of_two_patches());
}

TEST(PatchInputProjection,
     ChecksBuiltOnItUnderRandomSignificandsAcceptHonestAndRejectWrongResults) {
  expect_checks_built_on_input_projection_work(crypto::ObfuscationParams{});
}

/// Decrypting `c` with a RowProjection gives the plaintext of decrypting it without one, and
/// projections equal to projecting c's rows directly.
template <class Decrypt>
void expect_fused_decryption_projects_rows(const BlindedTensor& c, Decrypt decrypt, Rng& rng) {
  const int64_t m = c.dim(0), n = c.dim(1);
  const int rounds = 2;
  // ±1, as a result's check vectors (RowProjection without weights).
  std::vector<double> v = random_vectors(rounds * n, rng);
  for (double& e : v) e = e < 0 ? -1.0 : 1.0;
  const std::vector<double> ones(static_cast<size_t>(n), 1.0);
  std::vector<double> want(static_cast<size_t>(rounds * m)), want_abs(static_cast<size_t>(m));
  integrity::project(c.data(), m, n, false, v.data(), ones.data(), rounds, want.data(),
                     want_abs.data(), true);
  std::vector<double> got(want.size(), NAN), got_abs(want_abs.size(), NAN);
  const crypto::RowProjection projection{v.data(), rounds, m, got.data(), got_abs.data()};
  const Tensor fused = decrypt(c, &projection);
  const Tensor plain = decrypt(c, nullptr);
  ASSERT_EQ(fused.shape(), plain.shape());
  for (int64_t i = 0; i < plain.numel(); ++i) ASSERT_EQ(fused[i], plain[i]) << i;
  const double fp32_lanes = integrity::projection_relative_bound(n);
  expect_same_projection(got, want, want_abs, n, fp32_lanes);
  expect_same_projection(got_abs, want_abs, want_abs, n, fp32_lanes);
}

TEST(FusedResultProjection, Col2imDecryptionProjectsTheRowsItReads) {
  Rng rng(9);
  const crypto::PatchConvObfuscator obf(power_of_two_patches());
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.x.to_string() + " * " + c.w.to_string());
    const Tensor x = random_tensor(c.x, rng), w = random_tensor(c.w, rng);
    crypto::PatchConvForward fw = obf.encrypt(x, w, c.g);
    const Tensor dy = random_tensor(fw.shape().output_shape(), rng);
    expect_fused_decryption_projects_rows(
        worker_gemm(fw.encrypt_grad_for_dx(dy), fw.w(), false, false),
        [&](const BlindedTensor& g, const crypto::RowProjection* p) { return fw.decrypt_dx(g, p); },
        rng);
  }
}

TEST(FusedResultProjection, ProductAndPatchForwardDecryptionsProjectTheRowsTheyRead) {
  Rng rng(11);
  for (const auto& [m, k, n] : {std::tuple{7, 5, 3}, {64, 300, 40}, {33, 20, 600}}) {
    SCOPED_TRACE(std::to_string(m) + "x" + std::to_string(k) + "x" + std::to_string(n));
    const Tensor x = random_tensor({m, k}, rng), w = random_tensor({k, n}, rng);
    crypto::MatmulForward fw = crypto::MatmulObfuscator().encrypt(x, w);
    expect_fused_decryption_projects_rows(
        worker_gemm(fw.x(), fw.w(), false, false),
        [&](const BlindedTensor& c, const crypto::RowProjection* p) { return fw.decrypt(c, p); },
        rng);
    const BlindedTensor g = fw.encrypt_grad_for_dx(random_tensor({m, n}, rng));
    expect_fused_decryption_projects_rows(
        worker_gemm(g, fw.w(), false, true),
        [&](const BlindedTensor& c, const crypto::RowProjection* p) { return fw.decrypt_dx(c, p); },
        rng);
  }
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.x.to_string() + " * " + c.w.to_string());
    const Tensor x = random_tensor(c.x, rng), w = random_tensor(c.w, rng);
    crypto::PatchConvForward fw =
        crypto::PatchConvObfuscator(power_of_two_patches()).encrypt(x, w, c.g);
    expect_fused_decryption_projects_rows(
        worker_gemm(fw.x(), fw.w(), false, true),
        [&](const BlindedTensor& y, const crypto::RowProjection* p) { return fw.decrypt(y, p); },
        rng);
  }
}

TEST(FusedResultProjection, VerifyingFromItAcceptsHonestAndRejectsWrongResults) {
  Rng rng(10);
  const crypto::PatchConvObfuscator obf(power_of_two_patches());
  const Case c = kCases[2];
  const Tensor x = random_tensor(c.x, rng), w = random_tensor(c.w, rng);
  crypto::PatchConvForward fw = obf.encrypt(x, w, c.g);
  const Tensor dy = random_tensor(fw.shape().output_shape(), rng);
  const BlindedTensor g1 = fw.encrypt_grad_for_dx(dy);
  const integrity::ProductCheck check(g1, fw.w(), false, false, 1, integrity::Precision::kFp32);
  auto verify_fused = [&](const BlindedTensor& dp) {
    EXPECT_TRUE(check.check_shape(dp).passed);
    std::vector<double> cv(static_cast<size_t>(check.rows())), c_abs(cv.size());
    const crypto::RowProjection projection{check.signs(), check.rounds(), check.rows(), cv.data(),
                                           c_abs.data()};
    fw.decrypt_dx(dp, &projection);
    return check.verify_projected(cv.data(), c_abs.data());
  };
  BlindedTensor dp = worker_gemm(g1, fw.w(), false, false);
  EXPECT_TRUE(verify_fused(dp).passed);
  corrupt(dp, dp.numel() / 3);
  const integrity::CheckOutcome wrong = verify_fused(dp);
  EXPECT_FALSE(wrong.passed);
  EXPECT_GT(wrong.worst_ratio, 1.0);
  dp.mutable_data()[0] = NAN;
  EXPECT_FALSE(verify_fused(dp).passed);
  const BlindedTensor wrong_shape = BlindedTensor::allocate({dp.dim(0), dp.dim(1) - 1});
  EXPECT_FALSE(check.check_shape(wrong_shape).passed);
}

/// The worker's batched product C[e] = op(A[e])·op(B[e]), entry by entry.
BlindedTensor worker_batched(const BlindedTensor& a, const BlindedTensor& b, bool ta, bool tb) {
  const int64_t batch = a.dim(0), m = ta ? a.dim(2) : a.dim(1), k = ta ? a.dim(1) : a.dim(2);
  const int64_t n = tb ? b.dim(1) : b.dim(2);
  BlindedTensor c = BlindedTensor::allocate({batch, m, n});
  for (int64_t e = 0; e < batch; ++e)
    for (int64_t i = 0; i < m; ++i)
      for (int64_t l = 0; l < n; ++l) {
        double sum = 0.0;
        for (int64_t j = 0; j < k; ++j)
          sum += static_cast<double>(a.data()[e * m * k + (ta ? j * m + i : i * k + j)]) *
                 b.data()[e * k * n + (tb ? l * k + j : j * n + l)];
        c.mutable_data()[(e * m + i) * n + l] = static_cast<float>(sum);
      }
  return c;
}

// Attention's results: the batched decryption projects every entry's rows under that entry's
// vectors (entries in blinded order), the plaintext is the unprojected decryption's, and the check
// built on it passes honest results and rejects one wrong entry of the last head.
TEST(FusedResultProjection, BatchedDecryptionsProjectEveryEntryAndCatchAWrongOne) {
  Rng rng(12);
  const int64_t batch = 6, m = 9, k = 5, n = 7;
  const int rounds = 2;
  for (const bool tb : {false, true}) {
    SCOPED_TRACE(tb ? "B^T" : "B");
    const Tensor a = random_tensor({batch, m, k}, rng);
    const Tensor b = random_tensor(tb ? Shape{batch, n, k} : Shape{batch, k, n}, rng);
    crypto::BatchedMatmulForward fw = crypto::BatchedMatmulObfuscator().encrypt_forward(a, b, tb);
    const BlindedTensor g = fw.encrypt_grad_for_dx(random_tensor({batch, m, n}, rng));
    const integrity::ProductCheck c_check(fw.x(), fw.w(), false, tb, rounds);
    const integrity::ProductCheck da_check(g, fw.w(), false, !tb, rounds);
    auto verify_fused = [&](const integrity::ProductCheck& check, const BlindedTensor& c,
                            auto decrypt) {
      EXPECT_TRUE(check.check_shape(c).passed);
      std::vector<double> cv(static_cast<size_t>(batch * rounds * check.rows()), NAN);
      std::vector<double> c_abs(static_cast<size_t>(batch * check.rows()), NAN);
      const crypto::RowProjection projection{check.signs(), rounds, check.rows(), cv.data(),
                                             c_abs.data()};
      const Tensor fused = decrypt(c, &projection), unfused = decrypt(c, nullptr);
      for (int64_t i = 0; i < unfused.numel(); ++i) EXPECT_EQ(fused[i], unfused[i]) << i;
      return check.verify_projected(cv.data(), c_abs.data());
    };
    auto decrypt_c = [&](const BlindedTensor& c, const crypto::RowProjection* p) {
      return fw.decrypt(c, p);
    };
    auto decrypt_da = [&](const BlindedTensor& c, const crypto::RowProjection* p) {
      return fw.decrypt_dx(c, p);
    };
    BlindedTensor c = worker_batched(fw.x(), fw.w(), false, tb);
    BlindedTensor da = worker_batched(g, fw.w(), false, !tb);
    EXPECT_TRUE(verify_fused(c_check, c, decrypt_c).passed);
    EXPECT_TRUE(verify_fused(da_check, da, decrypt_da).passed);
    // One entry of the last blinded head off by more than its row's magnitude.
    c.mutable_data()[c.numel() - 3] += 100.0f;
    da.mutable_data()[da.numel() - 2] -= 100.0f;
    EXPECT_FALSE(verify_fused(c_check, c, decrypt_c).passed);
    EXPECT_FALSE(verify_fused(da_check, da, decrypt_da).passed);
  }
}

/// A tensor of `like`'s shape full of NaN: a check that reads it cannot pass.
BlindedTensor poisoned_like(const BlindedTensor& like) {
  BlindedTensor t = BlindedTensor::allocate(like.shape());
  std::fill(t.mutable_data(), t.mutable_data() + t.numel(),
            std::numeric_limits<float>::quiet_NaN());
  return t;
}

/// `c` with one entry moved by its row's absolute mass (corrupt()).
BlindedTensor corrupted(const BlindedTensor& c) {
  BlindedTensor wrong = BlindedTensor::allocate(c.shape());
  std::copy(c.data(), c.data() + c.numel(), wrong.mutable_data());
  corrupt(wrong, c.numel() / 2);
  return wrong;
}

// The forward check of a Linear layer (Y' = X'·W'), prepared as the offload engine does: W' is
// blinded and projected first, then X''s rows are projected as they are written. The check built
// on it never reads X' or W' (here: NaN stand-ins), accepts the honest Y' and rejects a wrong one;
// a check with fresh vectors (a re-sent request) gets nothing from it and reads the operands.
TEST(PreparedCheck, LinearForwardCheckTakesXFromItsBlindingNotFromAPassOverIt) {
  Rng rng(21);
  const crypto::MatmulObfuscator obf;
  for (const auto& [m, k, n] : {std::tuple<int64_t, int64_t, int64_t>{1, 1, 1},
                                {37, 16, 40},
                                {300, 64, 192},
                                {4096, 64, 64},
                                {65, 257, 33}})
    for (int rounds : {1, 2}) {
      SCOPED_TRACE(std::to_string(m) + "x" + std::to_string(k) + "x" + std::to_string(n) +
                   ", rounds " + std::to_string(rounds));
      const Tensor x = random_tensor({m, k}, rng), w = random_tensor({k, n}, rng);
      std::shared_ptr<integrity::PreparedCheck> prepared;
      crypto::RowProjection x_rows;
      const int64_t rows = m, inner = k, cols = n;  // clang 14 cannot capture bindings
      const crypto::MatmulForward fw =
          obf.encrypt(x, w, [&](const BlindedTensor& wb) -> const crypto::RowProjection* {
            prepared = integrity::PreparedCheck::draw(rounds, rows, inner, cols);
            prepared->project_b(wb, false);
            x_rows = prepared->a_rows();
            return &x_rows;
          });
      ASSERT_TRUE(prepared);
      const BlindedTensor y = worker_gemm(fw.x(), fw.w(), false, false);
      const BlindedTensor nan_x = poisoned_like(fw.x()), nan_w = poisoned_like(fw.w());
      const integrity::ProductCheck check(nan_x, nan_w, false, false, rounds,
                                          integrity::Precision::kFp32, prepared->replay_a(),
                                          prepared->replay_b(), prepared->signs());
      EXPECT_TRUE(check.verify(y).passed) << check.verify(y).reason;
      EXPECT_FALSE(check.verify(corrupted(y)).passed);

      const integrity::ProductCheck fresh(fw.x(), fw.w(), false, false, rounds,
                                          integrity::Precision::kFp32, prepared->replay_a(),
                                          prepared->replay_b());
      EXPECT_TRUE(fresh.verify(y).passed) << fresh.verify(y).reason;
      const integrity::ProductCheck fresh_on_nan(nan_x, nan_w, false, false, rounds,
                                                 integrity::Precision::kFp32, prepared->replay_a(),
                                                 prepared->replay_b());
      // (Tiny checks may draw the same vectors again, and then rightly take the replay.)
      if (rounds * n >= 40) {
        EXPECT_FALSE(fresh_on_nan.verify(y).passed) << "fresh vectors must read the operands";
      }
    }
}

// A Linear layer's backward: dY is blinded under both gradient keys in one pass, which projects
// dY'1 for the backward-data check (dX' = dY'1·W'ᵀ, W' projected beforehand) and dY'2 for the
// backward-weights check (dW' = X'ᵀ·dY'2, whose X' side the check still projects itself). Both
// checks accept the worker's honest results without reading dY'1, dY'2 or W', and reject wrong
// ones.
TEST(PreparedCheck, LinearBackwardChecksTakeBothGradientProjectionsFromOneBlindingPass) {
  Rng rng(22);
  const crypto::MatmulObfuscator obf;
  for (const auto& [m, k, n] : {std::tuple<int64_t, int64_t, int64_t>{1, 1, 1},
                                {37, 40, 16},
                                {300, 192, 64},
                                {65, 33, 257}})
    for (int rounds : {1, 3}) {
      SCOPED_TRACE(std::to_string(m) + "x" + std::to_string(k) + "x" + std::to_string(n) +
                   ", rounds " + std::to_string(rounds));
      crypto::MatmulForward fw =
          obf.encrypt(random_tensor({m, k}, rng), random_tensor({k, n}, rng));
      const Tensor dy = random_tensor({m, n}, rng);
      auto dx_check = integrity::PreparedCheck::draw(rounds, m, n, k);
      dx_check->project_b(fw.w(), true);
      auto dw_check = integrity::PreparedCheck::draw(rounds, k, m, n);
      const crypto::RowProjection dx_rows = dx_check->a_rows(), dw_rows = dw_check->b_rows();
      const auto [g1, g2] = fw.encrypt_grads(dy, &dx_rows, &dw_rows);

      const BlindedTensor dx = worker_gemm(g1, fw.w(), false, true);
      const integrity::ProductCheck check_dx(poisoned_like(g1), poisoned_like(fw.w()), false, true,
                                             rounds, integrity::Precision::kFp32,
                                             dx_check->replay_a(), dx_check->replay_b(),
                                             dx_check->signs());
      EXPECT_TRUE(check_dx.verify(dx).passed) << check_dx.verify(dx).reason;
      EXPECT_FALSE(check_dx.verify(corrupted(dx)).passed);

      const BlindedTensor dw = worker_gemm(fw.x(), g2, true, false);
      const integrity::ProductCheck check_dw(fw.x(), poisoned_like(g2), true, false, rounds,
                                             integrity::Precision::kFp32, {}, dw_check->replay_b(),
                                             dw_check->signs());
      EXPECT_TRUE(check_dw.verify(dw).passed) << check_dw.verify(dw).reason;
      EXPECT_FALSE(check_dw.verify(corrupted(dw)).passed);
    }
}

// Attention's forward products, prepared as the offload engine prepares them: C = A·B (A·V) takes
// B''s rows and then A''s from their blinding; C = A·Bᵀ (Q·Kᵀ) takes B''s side in a pass over
// the blinded Kᵀ, then A''s rows from their blinding. Every entry is checked (a wrong entry in the
// last head is caught) without the check reading either operand.
TEST(PreparedCheck, AttentionForwardChecksTakeTheirOperandsFromTheirBlinding) {
  Rng rng(23);
  const crypto::BatchedMatmulObfuscator obf;
  for (const auto& [batch, m, k, n] : {std::tuple<int64_t, int64_t, int64_t, int64_t>{1, 1, 1, 1},
                                       {6, 9, 5, 7},
                                       {16, 64, 16, 64},
                                       {8, 64, 64, 16},
                                       {3, 65, 33, 17}})
    for (const bool tb : {false, true})
      for (int rounds : {1, 2}) {
        SCOPED_TRACE(std::to_string(batch) + "x" + std::to_string(m) + "x" + std::to_string(k) +
                     "x" + std::to_string(n) + (tb ? " B^T" : " B") + ", rounds " +
                     std::to_string(rounds));
        const Tensor a = random_tensor({batch, m, k}, rng);
        const Tensor b = random_tensor(tb ? Shape{batch, n, k} : Shape{batch, k, n}, rng);
        auto prepared = integrity::PreparedCheck::draw(rounds, m, k, n, batch);
        crypto::RowProjection a_rows, b_rows;
        if (!tb) b_rows = prepared->b_rows();
        const bool trans_b = tb;  // clang 14 cannot capture bindings
        const crypto::BatchedMatmulForward fw =
            obf.encrypt_forward(a, b, tb, tb ? nullptr : &b_rows,
                                [&](const BlindedTensor& wb) -> const crypto::RowProjection* {
                                  if (trans_b) prepared->project_b(wb, true);
                                  a_rows = prepared->a_rows();
                                  return &a_rows;
                                });
        const BlindedTensor c = worker_batched(fw.x(), fw.w(), false, tb);
        const integrity::ProductCheck check(poisoned_like(fw.x()), poisoned_like(fw.w()), false, tb,
                                            rounds, integrity::Precision::kFp32,
                                            prepared->replay_a(), prepared->replay_b(),
                                            prepared->signs());
        EXPECT_TRUE(check.verify(c).passed) << check.verify(c).reason;
        BlindedTensor wrong = corrupted(c);
        EXPECT_FALSE(check.verify(wrong).passed);
        std::copy(c.data(), c.data() + c.numel(), wrong.mutable_data());
        corrupt(wrong, c.numel() - 1);
        EXPECT_FALSE(check.verify(wrong).passed);
      }
}

// Attention's backward: dC is blinded under both gradient keys in one pass, which projects dC'1 for
// the backward-data check (the cached B' projected beforehand) and, for C = A·B, dC'2 for the
// backward-weights check (dB' = A'ᵀ·dC'2, whose A' side the check projects itself). The checks
// accept the honest results without reading what was projected for them and reject wrong ones.
TEST(PreparedCheck, AttentionBackwardChecksTakeGradientProjectionsFromOneBlindingPass) {
  Rng rng(24);
  const crypto::BatchedMatmulObfuscator obf;
  for (const auto& [batch, m, k, n] : {std::tuple<int64_t, int64_t, int64_t, int64_t>{1, 1, 1, 1},
                                       {6, 9, 5, 7},
                                       {16, 64, 64, 16},
                                       {8, 64, 16, 64},
                                       {3, 33, 65, 17}})
    for (const bool tb : {false, true})
      for (int rounds : {1, 3}) {
        SCOPED_TRACE(std::to_string(batch) + "x" + std::to_string(m) + "x" + std::to_string(k) +
                     "x" + std::to_string(n) + (tb ? " B^T" : " B") + ", rounds " +
                     std::to_string(rounds));
        crypto::BatchedMatmulForward fw = obf.encrypt_forward(
            random_tensor({batch, m, k}, rng),
            random_tensor(tb ? Shape{batch, n, k} : Shape{batch, k, n}, rng), tb);
        const Tensor dc = random_tensor({batch, m, n}, rng);
        auto dx_check = integrity::PreparedCheck::draw(rounds, m, n, k, batch);
        dx_check->project_b(fw.w(), !tb);
        auto dw_check = integrity::PreparedCheck::draw(rounds, k, m, n, batch);
        const crypto::RowProjection dx_rows = dx_check->a_rows(), dw_rows = dw_check->b_rows();
        const auto [g1, g2] = fw.encrypt_grads(dc, &dx_rows, tb ? nullptr : &dw_rows);

        const BlindedTensor da = worker_batched(g1, fw.w(), false, !tb);
        const integrity::ProductCheck check_da(poisoned_like(g1), poisoned_like(fw.w()), false, !tb,
                                               rounds, integrity::Precision::kFp32,
                                               dx_check->replay_a(), dx_check->replay_b(),
                                               dx_check->signs());
        EXPECT_TRUE(check_da.verify(da).passed) << check_da.verify(da).reason;
        EXPECT_FALSE(check_da.verify(corrupted(da)).passed);
        if (tb) continue;  // dB' = dC'2ᵀ·A': dC'2 is op(A), not projected by rows
        const BlindedTensor db = worker_batched(fw.x(), g2, true, false);
        const integrity::ProductCheck check_db(fw.x(), poisoned_like(g2), true, false, rounds,
                                               integrity::Precision::kFp32, {},
                                               dw_check->replay_b(), dw_check->signs());
        EXPECT_TRUE(check_db.verify(db).passed) << check_db.verify(db).reason;
        EXPECT_FALSE(check_db.verify(corrupted(db)).passed);
      }
}

// Patch mode's backward-data check (dP' = dY'1·W'), prepared as the engine prepares it: W' is
// projected first, then dY'1's rows as the NCHW scatter writes them. The check accepts the
// worker's honest dP' without reading dY'1 or W' and rejects a wrong one.
TEST(PreparedCheck, PatchBackwardDataCheckTakesDY1FromItsBlinding) {
  Rng rng(25);
  const crypto::PatchConvObfuscator obf(power_of_two_patches());
  for (const Case& c : kCases)
    for (int rounds : {1, 2}) {
      SCOPED_TRACE(c.x.to_string() + " * " + c.w.to_string() + ", rounds " +
                   std::to_string(rounds));
      crypto::PatchConvForward fw =
          obf.encrypt(random_tensor(c.x, rng), random_tensor(c.w, rng), c.g);
      const auto s = crypto::ConvShape::of(c.x, c.w, c.g);
      const Tensor dy = random_tensor(s.output_shape(), rng);
      auto prepared =
          integrity::PreparedCheck::draw(rounds, s.positions(), s.out_channels, s.patch());
      prepared->project_b(fw.w(), false);
      const crypto::RowProjection dy_rows = prepared->a_rows();
      const BlindedTensor g1 = fw.encrypt_grad_for_dx(dy, &dy_rows);
      const BlindedTensor dp = worker_gemm(g1, fw.w(), false, false);
      const integrity::ProductCheck check(poisoned_like(g1), poisoned_like(fw.w()), false, false,
                                          rounds, integrity::Precision::kFp32, prepared->replay_a(),
                                          prepared->replay_b(), prepared->signs());
      EXPECT_TRUE(check.verify(dp).passed) << check.verify(dp).reason;
      EXPECT_FALSE(check.verify(corrupted(dp)).passed);
    }
}

TEST(PreparedCheck, ReplaysOnlyTheVectorsItWasPreparedWithAndRefusesMisuse) {
  auto prepared = integrity::PreparedCheck::draw(1, 3, 2, 4);
  EXPECT_THROW(prepared->a_rows(), std::logic_error);  // A's side needs B's first
  const BlindedTensor wrong = BlindedTensor::allocate({4, 2});
  EXPECT_THROW(prepared->project_b(wrong, false), std::invalid_argument);
  std::vector<double> out(4), out_abs(4);
  const std::vector<double> ones(4, 1.0);
  EXPECT_FALSE(
      prepared->replay_b()(prepared->signs().data(), ones.data(), 1, out.data(), out_abs.data()))
      << "nothing to replay before B's side is taken";
  BlindedTensor zeros = BlindedTensor::allocate({2, 4});
  std::fill(zeros.mutable_data(), zeros.mutable_data() + zeros.numel(), 0.0f);
  prepared->project_b(zeros, false);
  EXPECT_TRUE(
      prepared->replay_b()(prepared->signs().data(), ones.data(), 1, out.data(), out_abs.data()));
  std::vector<double> other = prepared->signs();
  other[0] = -other[0];
  EXPECT_FALSE(prepared->replay_b()(other.data(), ones.data(), 1, out.data(), out_abs.data()));
  EXPECT_FALSE(
      prepared->replay_b()(prepared->signs().data(), ones.data(), 2, out.data(), out_abs.data()));
  const BlindedTensor a = BlindedTensor::allocate({3, 2}), b = BlindedTensor::allocate({2, 4});
  EXPECT_THROW(integrity::ProductCheck(a, b, false, false, 1, integrity::Precision::kFp32, {}, {},
                                       std::vector<double>(5, 1.0)),
               std::invalid_argument);
}

// B's rows summing past FLT_MAX (64 entries of ±10^37) overflow the fp32 lanes of the kernel that
// projects them as B is blinded (on AVX-512). The check must not take those sums: an infinite
// |B|·1 would make its tolerance infinite and let any result pass. It projects B itself (in
// double where fp32 overflows), accepts the honest result and rejects a wrong one.
TEST(PreparedCheck, SumsThatOverflowedFp32AreNotReplayedAndTheCheckStaysSound) {
  const int64_t m = 8, k = 8, n = 64;
  Rng rng(5);
  BlindedTensor a = BlindedTensor::allocate({m, k}), b = BlindedTensor::allocate({k, n});
  for (int64_t i = 0; i < a.numel(); ++i)
    a.mutable_data()[i] =
        static_cast<float>(1e-3 * (rng.uniform() + 0.5) * (rng.uniform() < 0.5 ? -1.0 : 1.0));
  for (int64_t i = 0; i < b.numel(); ++i)
    b.mutable_data()[i] = rng.uniform() < 0.5 ? -1e37f : 1e37f;
  BlindedTensor c = BlindedTensor::allocate({m, n});
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double sum = 0;
      for (int64_t l = 0; l < k; ++l)
        sum += double(a.data()[i * k + l]) * double(b.data()[l * n + j]);
      c.mutable_data()[i * n + j] = static_cast<float>(sum);
    }

  auto prepared = integrity::PreparedCheck::draw(1, m, k, n);
  const float* rows[8];
  int64_t index[8];
  for (int r = 0; r < 8; ++r) rows[r] = b.data() + r * n, index[r] = r;
  prepared->b_rows().project8(rows, n, index);  // as the kernel blinding B would
  for (int r = 0; r < 8; ++r) rows[r] = a.data() + r * k;
  prepared->a_rows().project8(rows, k, index);
  const integrity::ProductCheck check(a, b, false, false, 1, integrity::Precision::kFp32,
                                      prepared->replay_a(), prepared->replay_b(),
                                      prepared->signs());
  const integrity::CheckOutcome honest = check.verify(c);
  EXPECT_TRUE(honest.passed) << honest.reason;
  BlindedTensor wrong = c.clone();
  wrong.mutable_data()[5] += 1e34f;  // ~10^3 x the tolerance, ~10 % of the entry
  EXPECT_FALSE(check.verify(wrong).passed);
}

}  // namespace
}  // namespace tempo
