// What a worker learns about patch mode's positions by matching significands (docs/privacy.md,
// "Patch mode and significands"), on real activations: the first IMAGES Fashion-MNIST test
// images through a random 3x3 conv (1 -> 16 channels, seed 1) and ReLU, then a patch-mode 3x3
// conv (16 -> 16, pad 1) blinded under a fresh key of each scale distribution, and the attack
// (attack::link_rows_by_significand) scored with the key's position permutation.
// Usage: patch_linking_bench [DATA_DIR=/usr/share/datasets/fashion-mnist] [IMAGES=32]
#include <array>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "master/attack/patch_linking.h"
#include "master/core/random.h"
#include "master/crypto/crypto.h"
#include "master/data/fashion_mnist.h"
#include "master/nn/activations.h"
#include "master/nn/conv2d.h"

namespace {

using namespace tempo;

/// Row pairs sharing at least 1, 2 and 8 significands, how many of those overlap (same image,
/// windows within the kernel of each other), and horizontal neighbours sharing at least 2.
void report(const char* name, const crypto::ConvShape& s, const crypto::PatchConvKey& key,
            const Tensor& x) {
  const BlindedTensor xb = crypto::PatchConvEncryptor(key, s).encrypt_input(x);
  const int64_t oh = s.out_h(), ow = s.out_w();
  const auto where = [&](int64_t row) {
    const int64_t p = key.m.perm()[static_cast<size_t>(row)];
    return std::array<int64_t, 3>{p / (oh * ow), p / ow % oh, p % ow};
  };
  constexpr std::array<int, 3> kShared = {1, 2, 8};
  std::array<int64_t, 3> linked{}, overlapping{};
  int64_t neighbours_linked = 0;
  for (const auto& [pair, shared] : attack::link_rows_by_significand(xb, s.kh * s.kw)) {
    const auto a = where(pair.first), b = where(pair.second);
    const bool overlap =
        a[0] == b[0] && std::llabs(a[1] - b[1]) < s.kh && std::llabs(a[2] - b[2]) < s.kw;
    for (size_t t = 0; t < kShared.size(); ++t)
      if (shared >= kShared[t]) {
        ++linked[t];
        overlapping[t] += overlap;
      }
    if (shared >= 2 && a[0] == b[0] && a[1] == b[1] && std::llabs(a[2] - b[2]) == 1)
      ++neighbours_linked;
  }
  const int64_t neighbours = s.batch * oh * (ow - 1);
  std::printf("%-16s", name);
  for (size_t t = 0; t < kShared.size(); ++t)
    std::printf("  >=%d: %7lld pairs, %6.2f%% overlapping", kShared[t],
                static_cast<long long>(linked[t]),
                linked[t] ? 100.0 * static_cast<double>(overlapping[t]) / linked[t] : 0.0);
  std::printf("  | neighbours linked (>=2): %lld of %lld (%.1f%%)\n",
              static_cast<long long>(neighbours_linked), static_cast<long long>(neighbours),
              100.0 * static_cast<double>(neighbours_linked) / static_cast<double>(neighbours));
}

}  // namespace

int main(int argc, char** argv) try {
  const std::string dir = argc > 1 ? argv[1] : "";
  const int64_t images = argc > 2 ? std::atoll(argv[2]) : 32;
  const data::Dataset test = data::load_fashion_mnist(dir, data::Split::kTest);
  if (images < 1 || images > test.size()) {
    std::fprintf(stderr, "patch_linking_bench: IMAGES must be in [1, %lld]\n",
                 static_cast<long long>(test.size()));
    return 2;
  }
  const int64_t h = test.height(), w = test.width(), plane = h * w;
  Tensor img({images, 1, h, w});
  const data::Normalization norm = data::fashion_mnist_normalization();
  for (int64_t n = 0; n < images; ++n)
    for (int64_t e = 0; e < plane; ++e)
      img[n * plane + e] =
          (static_cast<float>(test.image(n)[e]) / 255.0f - norm.mean[0]) / norm.std[0];
  Rng rng(1);
  nn::Conv2d stem(1, 16, 3, rng, 1, 1, false);
  nn::ReLU relu;
  const Tensor x = relu.forward(stem.forward(img));
  const auto s = crypto::ConvShape::of(x.shape(), {16, 16, 3, 3}, {1, 1, 1, 1});
  std::printf("X' [%lld, %lld] from %lld Fashion-MNIST test images (conv 1->16 + ReLU)\n",
              static_cast<long long>(s.positions()), static_cast<long long>(s.patch()),
              static_cast<long long>(images));
  for (const auto d :
       {crypto::ScaleDistribution::kPowerOfTwo, crypto::ScaleDistribution::kRandomMantissa,
        crypto::ScaleDistribution::kLogUniform}) {
    crypto::ObfuscationParams p;
    p.patch_distribution = d;
    report(crypto::scale_distribution_name(d), s,
           crypto::KeyGenerator(p).patch_conv_key(s.positions(), s.patch(), s.out_channels), x);
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "patch_linking_bench: %s\n", e.what());
  return 1;
}
