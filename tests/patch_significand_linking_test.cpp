// What a worker can link inside one patch-mode request (docs/privacy.md, "Patch mode and
// significands"). im2col copies every input value into up to kh·kw patches (rows of X'), at a
// different tap (column) in each. X'[i][j] = x · r_i·s_j, so under power-of-two scales every copy
// keeps x's 23 significand bits: a worker that groups X''s non-zero entries by those bits finds
// the rows that share a value, i.e. the patches that overlap, and from them the spatial layout
// patch mode is there to hide. Patch mode's default scales carry random significands, and the
// same grouping then finds no more than chance.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <utility>
#include <vector>

#include "master/attack/patch_linking.h"
#include "master/core/random.h"
#include "master/crypto/crypto.h"

namespace tempo {
namespace {

/// Post-ReLU feature maps: half the entries exactly zero, the others with arbitrary significands
/// (as activations computed in fp32 have).
Tensor feature_maps(const Shape& shape, Rng& rng) {
  Tensor x(shape);
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = std::max(0.0f, static_cast<float>(rng.normal()));
  return x;
}

struct LinkResult {
  int64_t linked = 0;       ///< row pairs sharing at least `min_shared` significands
  int64_t overlapping = 0;  ///< of which truly overlapping patches (same image, windows meet)
  int64_t neighbours = 0;   ///< horizontally adjacent patch pairs in the batch
  int64_t neighbours_linked = 0;
};

/// Runs the attack on X' = encrypt_input(x) under `key` and scores it with the key's position
/// permutation (blinded row i holds position key.m.perm()[i] = (n, y, x)).
LinkResult run_attack(const crypto::ConvShape& s, const crypto::PatchConvKey& key, const Tensor& x,
                      int min_shared) {
  const BlindedTensor xb = crypto::PatchConvEncryptor(key, s).encrypt_input(x);
  const int64_t oh = s.out_h(), ow = s.out_w();
  const auto position = [&](int64_t row) {
    const int64_t p = key.m.perm()[static_cast<size_t>(row)];
    return std::array<int64_t, 3>{p / (oh * ow), p / ow % oh, p % ow};
  };
  LinkResult r;
  r.neighbours = s.batch * oh * (ow - 1);
  for (const auto& [pair, shared] : attack::link_rows_by_significand(xb, s.kh * s.kw)) {
    if (shared < min_shared) continue;
    ++r.linked;
    const auto a = position(pair.first), b = position(pair.second);
    const int64_t dy = std::abs(a[1] - b[1]) * s.geometry.stride_h;
    const int64_t dx = std::abs(a[2] - b[2]) * s.geometry.stride_w;
    if (a[0] == b[0] && dy < s.kh && dx < s.kw) ++r.overlapping;
    if (a[0] == b[0] && a[1] == b[1] && std::abs(a[2] - b[2]) == 1) ++r.neighbours_linked;
  }
  return r;
}

struct Case {
  Shape x, w;
  nn::ConvGeometry g;
};
std::vector<Case> shapes() {
  return {
      {{4, 8, 12, 12}, {8, 8, 3, 3}, {1, 1, 1, 1}},  // resnet-like 3x3, stride 1
      {{2, 6, 13, 11}, {4, 6, 3, 3}, {2, 2, 1, 1}},  // stride 2 (windows still overlap)
      {{2, 4, 10, 10}, {4, 4, 5, 5}, {1, 1, 2, 2}},  // 5x5 kernel
  };
}

TEST(PatchSignificandLinking, PowerOfTwoScalesLinkOverlappingPatchesAndNothingElse) {
  // The control that shows the attack works: with power-of-two patch scales (the default before
  // stop 26) every linked pair of rows is a pair of overlapping patches, and nearly every pair of
  // horizontal neighbours is linked.
  crypto::ObfuscationParams p;
  p.patch_distribution = crypto::ScaleDistribution::kPowerOfTwo;
  const crypto::KeyGenerator keygen(p);
  Rng rng(31);
  for (const Case& c : shapes()) {
    SCOPED_TRACE(c.x.to_string() + " * " + c.w.to_string());
    const auto s = crypto::ConvShape::of(c.x, c.w, c.g);
    const Tensor x = feature_maps(c.x, rng);
    const LinkResult r =
        run_attack(s, keygen.patch_conv_key(s.positions(), s.patch(), s.out_channels), x, 2);
    EXPECT_GT(r.linked, r.neighbours);
    EXPECT_EQ(r.overlapping, r.linked) << "a link between patches that do not overlap";
    EXPECT_GT(r.neighbours_linked, r.neighbours * 95 / 100);
  }
}

TEST(PatchSignificandLinking, DefaultRandomSignificandsLeaveOverlappingPatchesUnlinked) {
  const crypto::KeyGenerator keygen;  // the default: random significands for patch mode
  ASSERT_EQ(keygen.params().patch_distribution, crypto::ScaleDistribution::kRandomMantissa);
  Rng rng(32);
  for (const Case& c : shapes()) {
    SCOPED_TRACE(c.x.to_string() + " * " + c.w.to_string());
    const auto s = crypto::ConvShape::of(c.x, c.w, c.g);
    const Tensor x = feature_maps(c.x, rng);
    const crypto::PatchConvKey key =
        keygen.patch_conv_key(s.positions(), s.patch(), s.out_channels);
    // Pairs of rows that share two significands: chance only (two coincidences among 2^23).
    const LinkResult two = run_attack(s, key, x, 2);
    EXPECT_LE(two.linked, 2) << two.overlapping << " of them overlapping";
    EXPECT_EQ(two.neighbours_linked, 0);
    // Even a single shared significand (a coincidence among 2^23 values, with any row) links
    // almost none of the overlapping patches (power of two: all of them).
    const LinkResult one = run_attack(s, key, x, 1);
    EXPECT_LE(one.overlapping, one.neighbours / 20) << one.linked << " pairs linked";
  }
}

}  // namespace
}  // namespace tempo
