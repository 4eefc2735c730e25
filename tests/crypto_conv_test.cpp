// Property tests of MM-obfuscation for convolutions (PROTOCOL.md sections 3 and 4): channel mode
// and patch mode, forward, backward-data and backward-weights, against the plain (in-TEE) conv.
#include <gtest/gtest.h>

#include <vector>

#include "crypto_test_util.h"
#include "gradcheck.h"
#include "master/crypto/crypto.h"
#include "master/crypto/gather_map.h"
#include "master/crypto/patch_kernels.h"
#include "master/nn/im2col.h"
#include "master/nn/plain_compute.h"

namespace tempo {
namespace {

using testing::abs_of;
using testing::expect_within_fp_bound;
using testing::random_tensor;
using testing::to_tensor;
using testing::worker_gemm;

struct Case {
  Shape x, w;
  nn::ConvGeometry g;
};
// 1x1, 3x3 same, strided+padded, non-square kernels and images, single image/channel. The last
// three have C·kh·kw and output channels multiples of 8 and rows of >= 8 positions, which the
// AVX2 kernels handle 8 rows at a time (horizontal stride 1, any vertical stride; leftover
// positions at the end of each row).
const std::vector<Case> kCases = {
    {{1, 1, 1, 1}, {1, 1, 1, 1}, {1, 1, 0, 0}},
    {{2, 3, 5, 5}, {4, 3, 1, 1}, {1, 1, 0, 0}},
    {{3, 4, 7, 6}, {5, 4, 3, 3}, {1, 1, 1, 1}},
    {{2, 3, 9, 8}, {6, 3, 3, 3}, {2, 2, 1, 1}},
    {{4, 2, 6, 11}, {3, 2, 2, 5}, {1, 2, 0, 2}},
    {{1, 5, 4, 4}, {2, 5, 4, 4}, {1, 1, 0, 0}},
    {{2, 8, 9, 12}, {8, 8, 3, 3}, {1, 1, 1, 1}},
    {{3, 8, 10, 17}, {16, 8, 3, 3}, {2, 1, 1, 1}},
    {{2, 16, 8, 8}, {8, 16, 1, 1}, {1, 1, 0, 0}},
    // Horizontal strides 2 and 3 with 8-position tiles (ResNet's downsampling convs).
    {{2, 8, 9, 20}, {4, 8, 3, 3}, {2, 2, 1, 1}},
    {{2, 16, 6, 18}, {8, 16, 1, 1}, {2, 2, 0, 0}},
    {{1, 8, 7, 26}, {4, 8, 3, 3}, {1, 3, 1, 1}},
    // Rows shorter than one 8-position tile (ResNet's last stages: 7 and 4 positions).
    {{2, 8, 5, 5}, {4, 8, 3, 3}, {1, 1, 1, 1}},
    {{2, 16, 7, 7}, {8, 16, 3, 3}, {2, 2, 1, 1}},
};

struct PlainResults {
  Tensor y, dx, dw;
};

// The reference: PlainCompute's conv forward and backward on (x, w, dy).
PlainResults plain_conv(const Tensor& x, const Tensor& w, const Tensor* dy,
                        const nn::ConvGeometry& g) {
  nn::PlainCompute pc;
  std::unique_ptr<nn::SavedProduct> saved;
  PlainResults r;
  r.y = pc.conv2d(x, w, g, &saved);
  if (dy) pc.conv2d_backward(*dy, &saved, &r.dx, &r.dw);
  return r;
}

Tensor output_grad(const Case& c, Rng& rng) {
  const auto s = crypto::ConvShape::of(c.x, c.w, c.g);
  return random_tensor(s.output_shape(), rng);
}

BlindedTensor as_blinded(const Tensor& t) {
  BlindedTensor b = BlindedTensor::allocate(t.shape());
  std::copy(t.data(), t.data() + t.numel(), b.mutable_data());
  return b;
}

// ---------------------------------------------------------------------------- channel mode

// The worker of channel mode: conv forward / backward-data / backward-weights on blinded tensors
// (PlainCompute run on the blinded data, which is exactly what a worker backend computes).
BlindedTensor worker_conv(const BlindedTensor& x, const BlindedTensor& w,
                          const nn::ConvGeometry& g) {
  return as_blinded(nn::PlainCompute().conv2d(to_tensor(x), to_tensor(w), g, nullptr));
}
BlindedTensor worker_backward_data(const BlindedTensor& dy, const BlindedTensor& w,
                                   const Shape& x_shape, const nn::ConvGeometry& g) {
  nn::PlainCompute pc;
  std::unique_ptr<nn::SavedProduct> saved;
  pc.conv2d(Tensor::zeros(x_shape), to_tensor(w), g, &saved);
  Tensor dx;
  pc.conv2d_backward(to_tensor(dy), &saved, &dx, nullptr);
  return as_blinded(dx);
}
BlindedTensor worker_backward_weights(const BlindedTensor& x, const BlindedTensor& dy,
                                      const Shape& w_shape, const nn::ConvGeometry& g) {
  nn::PlainCompute pc;
  std::unique_ptr<nn::SavedProduct> saved;
  pc.conv2d(to_tensor(x), Tensor::zeros(w_shape), g, &saved);
  Tensor dw;
  pc.conv2d_backward(to_tensor(dy), &saved, nullptr, &dw);
  return as_blinded(dw);
}

TEST(CryptoConvChannel, ForwardBackwardDataAndBackwardWeightsDecryptToPlainConv) {
  Rng rng(21);
  const crypto::ConvChannelObfuscator obf;
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.x.to_string() + " * " + c.w.to_string());
    const Tensor x = random_tensor(c.x, rng), w = random_tensor(c.w, rng);
    const Tensor dy = output_grad(c, rng);
    const PlainResults want = plain_conv(x, w, &dy, c.g);
    const Tensor ax = abs_of(x), aw = abs_of(w), ady = abs_of(dy);
    const PlainResults bound = plain_conv(ax, aw, &ady, c.g);
    const auto s = crypto::ConvShape::of(c.x, c.w, c.g);

    crypto::ConvChannelForward fw = obf.encrypt(x, w);
    EXPECT_EQ(fw.x().shape(), c.x);
    EXPECT_EQ(fw.w().shape(), c.w);
    const Tensor y = fw.decrypt(worker_conv(fw.x(), fw.w(), c.g));
    expect_within_fp_bound(y, want.y, bound.y, s.patch());

    const Tensor dx =
        fw.decrypt_dx(worker_backward_data(fw.encrypt_grad_for_dx(dy), fw.w(), c.x, c.g));
    expect_within_fp_bound(dx, want.dx, bound.dx, s.out_channels * s.kh * s.kw);

    const Tensor dw =
        fw.decrypt_dw(worker_backward_weights(fw.x(), fw.encrypt_grad_for_dw(dy), c.w, c.g));
    expect_within_fp_bound(dw, want.dw, bound.dw, s.positions());
  }
}

TEST(CryptoConvChannel, BlindedInputFollowsTheDocumentedConvention) {
  Rng rng(22);
  const crypto::ConvChannelKey key = crypto::KeyGenerator().conv_channel_key(3, 4, 5);
  const Tensor x = random_tensor({3, 4, 2, 3}, rng), w = random_tensor({5, 4, 3, 3}, rng);
  const crypto::ConvChannelEncryptor enc(key);
  const Tensor xb = to_tensor(enc.encrypt_input(x)), wb = to_tensor(enc.encrypt_weight(w));
  for (int b = 0; b < 3; ++b)
    for (int ch = 0; ch < 4; ++ch)
      for (int t = 0; t < 6; ++t)
        EXPECT_EQ(xb[(b * 4 + ch) * 6 + t],
                  key.batch.scale()[b] * key.in_channels.scale()[ch] *
                      x[(key.batch.perm()[b] * 4 + key.in_channels.perm()[ch]) * 6 + t]);
  for (int o = 0; o < 5; ++o)
    for (int ch = 0; ch < 4; ++ch)
      for (int t = 0; t < 9; ++t)
        EXPECT_EQ(wb[(o * 4 + ch) * 9 + t],
                  key.out_channels.scale()[o] * key.in_channels.inv_scale()[ch] *
                      w[(key.out_channels.perm()[o] * 4 + key.in_channels.perm()[ch]) * 9 + t]);
}

TEST(CryptoConvChannel, MismatchedShapesAreRejected) {
  const crypto::ConvChannelObfuscator obf;
  EXPECT_THROW(obf.encrypt(Tensor({2, 3, 4, 4}), Tensor({5, 2, 3, 3})), std::invalid_argument);
  const crypto::ConvChannelKey key = crypto::KeyGenerator().conv_channel_key(2, 3, 5);
  EXPECT_THROW(crypto::ConvChannelEncryptor(key).encrypt_input(Tensor({3, 3, 4, 4})),
               std::invalid_argument);
  EXPECT_THROW(
      crypto::ConvChannelDecryptor(key).decrypt_output(BlindedTensor::allocate({2, 4, 3, 3})),
      std::invalid_argument);
}

// ---------------------------------------------------------------------------- patch mode

TEST(CryptoConvPatch, FusedEncryptionUnderIdentityKeyIsTheTransposedIm2col) {
  Rng rng(23);
  for (const Case& c : kCases) {
    const auto s = crypto::ConvShape::of(c.x, c.w, c.g);
    const crypto::PatchConvKey id{crypto::DimKey::identity(s.positions()),
                                  crypto::DimKey::identity(s.patch()),
                                  crypto::DimKey::identity(s.out_channels)};
    const Tensor x = random_tensor(c.x, rng);
    const Tensor got = to_tensor(crypto::PatchConvEncryptor(id, s).encrypt_input(x));
    const int64_t plane = s.out_h() * s.out_w(), image = s.in_channels * s.height * s.width;
    std::vector<float> cols(static_cast<size_t>(s.patch() * plane));
    for (int64_t n = 0; n < s.batch; ++n) {
      nn::im2col(x.data() + n * image, s.in_channels, s.height, s.width, s.kh, s.kw, c.g,
                 cols.data());
      for (int64_t q = 0; q < s.patch(); ++q)
        for (int64_t p = 0; p < plane; ++p)
          ASSERT_EQ(got[(n * plane + p) * s.patch() + q], cols[static_cast<size_t>(q * plane + p)]);
    }
  }
}

TEST(CryptoConvPatch, BlindedPatchesArePermutedAndScaledPatchRows) {
  Rng rng(24);
  for (const Case& c : {kCases[3], kCases[6], kCases[7], kCases[8], kCases[9], kCases[10],
                        kCases[11], kCases[12], kCases[13]}) {
    const auto s = crypto::ConvShape::of(c.x, c.w, c.g);
    const crypto::PatchConvKey key =
        crypto::KeyGenerator().patch_conv_key(s.positions(), s.patch(), s.out_channels);
    const crypto::PatchConvKey id{crypto::DimKey::identity(s.positions()),
                                  crypto::DimKey::identity(s.patch()),
                                  crypto::DimKey::identity(s.out_channels)};
    const Tensor x = random_tensor(c.x, rng);
    const Tensor plain = to_tensor(crypto::PatchConvEncryptor(id, s).encrypt_input(x));
    const Tensor got = to_tensor(crypto::PatchConvEncryptor(key, s).encrypt_input(x));
    const int64_t k = s.patch();
    // One rounding per entry: the value times the product of its two scales (exact for
    // power-of-two scales; the default random significands round it).
    for (int64_t i = 0; i < s.positions(); ++i)
      for (int64_t j = 0; j < k; ++j)
        ASSERT_EQ(got[i * k + j], plain[key.m.perm()[i] * k + key.k.perm()[j]] *
                                      (key.m.scale()[i] * key.k.scale()[j]));
  }
}

TEST(CryptoConvPatch, ForwardBackwardDataAndBackwardWeightsDecryptToPlainConv) {
  Rng rng(25);
  const crypto::PatchConvObfuscator obf;
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.x.to_string() + " * " + c.w.to_string());
    const Tensor x = random_tensor(c.x, rng), w = random_tensor(c.w, rng);
    const Tensor dy = output_grad(c, rng);
    const PlainResults want = plain_conv(x, w, &dy, c.g);
    const Tensor ax = abs_of(x), aw = abs_of(w), ady = abs_of(dy);
    const PlainResults bound = plain_conv(ax, aw, &ady, c.g);
    const auto s = crypto::ConvShape::of(c.x, c.w, c.g);

    crypto::PatchConvForward fw = obf.encrypt(x, w, c.g);
    EXPECT_EQ(fw.x().shape(), Shape({s.positions(), s.patch()}));
    EXPECT_EQ(fw.w().shape(), Shape({s.out_channels, s.patch()}));
    // The worker: Y' = X'·W'^T, dP' = dY'1·W', dW' = dY'2^T·X' (plain GEMMs).
    // The default random-significand scales round: each term's factors (x·(r·s), w·(u·(1/s)),
    // the inverses the decryption multiplies by) go through at most 8 more roundings.
    const double scaling = 8.0 * std::ldexp(1.0, -24);
    const Tensor y = fw.decrypt(worker_gemm(fw.x(), fw.w(), false, true));
    expect_within_fp_bound(y, want.y, bound.y, s.patch(), scaling);

    const Tensor dx = fw.decrypt_dx(worker_gemm(fw.encrypt_grad_for_dx(dy), fw.w(), false, false));
    expect_within_fp_bound(dx, want.dx, bound.dx, s.out_channels * s.kh * s.kw, scaling);

    const Tensor dw = fw.decrypt_dw(worker_gemm(fw.encrypt_grad_for_dw(dy), fw.x(), true, false));
    expect_within_fp_bound(dw, want.dw, bound.dw, s.positions(), scaling);
  }
}

TEST(CryptoConvPatch, Col2imUnblindingEqualsThePerPositionSumBitForBit) {
  // dx[c][y·sh - ph + i][x·sw - pw + k] += src[row p][column q] · (row scale · column scale),
  // positions p in increasing order: whatever path the kernel takes (8 positions at a time for
  // the cases with 8·k patch columns), each output element must receive its terms in that order.
  const crypto::KeyGenerator gen;
  Rng rng(26);
  for (const Case& c : kCases) {
    const auto s = crypto::ConvShape::of(c.x, c.w, c.g);
    const int64_t m = s.positions(), kdim = s.patch(), taps = s.kh * s.kw;
    const auto rows = crypto::GatherMap::decrypt(gen.dim_key(m), crypto::ScalePower::kInverse);
    const auto cols =
        crypto::GatherMap::decrypt(gen.dim_key(kdim, true), crypto::ScalePower::kInverse);
    const Tensor src = random_tensor({m, kdim}, rng);
    std::vector<float> want(static_cast<size_t>(c.x.numel()), 0.0f);
    const int64_t oh = s.out_h(), ow = s.out_w();
    for (int64_t p = 0; p < m; ++p) {
      const int64_t n = p / (oh * ow), y = p / ow % oh, x = p % ow;
      const float* row = src.data() + int64_t{rows.index[static_cast<size_t>(p)]} * kdim;
      for (int64_t q = 0; q < kdim; ++q) {
        const int64_t ch = q / taps, i = q / s.kw % s.kh, k = q % s.kw;
        const int64_t iy = y * c.g.stride_h - c.g.pad_h + i, ix = x * c.g.stride_w - c.g.pad_w + k;
        if (iy < 0 || iy >= s.height || ix < 0 || ix >= s.width) continue;
        want[static_cast<size_t>(((n * s.in_channels + ch) * s.height + iy) * s.width + ix)] +=
            row[cols.index[static_cast<size_t>(q)]] *
            (rows.mul[static_cast<size_t>(p)] * cols.mul[static_cast<size_t>(q)]);
      }
    }
    std::vector<float> got(want.size(), 0.0f);
    crypto::patch::unblind_col2im(src.data(), s, rows, cols, got.data());
    for (size_t e = 0; e < want.size(); ++e)
      ASSERT_EQ(got[e], want[e]) << "element " << e << " of case " << c.x.to_string();
  }
}

TEST(CryptoConvPatch, KeysThatDoNotFitTheConvAreRejected) {
  const auto s = crypto::ConvShape::of({2, 3, 5, 5}, {4, 3, 3, 3}, {});
  const crypto::PatchConvKey wrong =
      crypto::KeyGenerator().patch_conv_key(s.positions() + 1, s.patch(), 4);
  EXPECT_THROW(crypto::PatchConvEncryptor(wrong, s), std::invalid_argument);
  EXPECT_THROW(crypto::ConvShape::of({2, 3, 2, 2}, {4, 3, 3, 3}, {}), std::invalid_argument);
  EXPECT_THROW(
      crypto::PatchConvObfuscator().encrypt(Tensor({2, 3, 5, 5}), Tensor({4, 2, 3, 3}), {}),
      std::invalid_argument);
}

}  // namespace
}  // namespace tempo
