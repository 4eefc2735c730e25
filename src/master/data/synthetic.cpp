#include "master/data/synthetic.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>
#include <vector>

#include "master/core/random.h"
#include "master/data/seeding.h"

namespace tempo::data {
namespace {

// Prototypes are random on a coarse grid and bilinearly upsampled: smooth patterns that a
// convolution can pick up, not just per-pixel noise.
constexpr int kGrid = 4;

std::vector<float> make_prototypes(const SyntheticSpec& s) {
  const int64_t plane = int64_t{s.height} * s.width;
  std::vector<float> protos(static_cast<size_t>(int64_t{s.num_classes} * s.channels * plane));
  Rng rng(derive_seed(s.seed, 0x70726f746fULL));  // "proto"
  float grid[kGrid + 1][kGrid + 1];
  for (int64_t kc = 0; kc < int64_t{s.num_classes} * s.channels; ++kc) {
    for (auto& row : grid)
      for (float& g : row) g = rng.uniform(-1.0f, 1.0f);
    float* p = protos.data() + kc * plane;
    for (int y = 0; y < s.height; ++y) {
      const float gy = (s.height > 1 ? float(y) / float(s.height - 1) : 0.0f) * kGrid;
      const int y0 = std::min(static_cast<int>(gy), kGrid - 1);
      const float fy = gy - float(y0);
      for (int x = 0; x < s.width; ++x) {
        const float gx = (s.width > 1 ? float(x) / float(s.width - 1) : 0.0f) * kGrid;
        const int x0 = std::min(static_cast<int>(gx), kGrid - 1);
        const float fx = gx - float(x0);
        p[y * s.width + x] = (1 - fy) * ((1 - fx) * grid[y0][x0] + fx * grid[y0][x0 + 1]) +
                             fy * ((1 - fx) * grid[y0 + 1][x0] + fx * grid[y0 + 1][x0 + 1]);
      }
    }
  }
  return protos;
}

}  // namespace

Dataset make_synthetic(const SyntheticSpec& spec, Split split) {
  const int64_t n = split == Split::kTrain ? spec.train_size : spec.test_size;
  if (n <= 0 || spec.channels <= 0 || spec.height <= 0 || spec.width <= 0 || spec.num_classes <= 0)
    throw std::invalid_argument(
        "synthetic dataset: sizes must be positive (samples " + std::to_string(n) + ", shape " +
        std::to_string(spec.channels) + "x" + std::to_string(spec.height) + "x" +
        std::to_string(spec.width) + ", classes " + std::to_string(spec.num_classes) + ")");
  const std::vector<float> protos = make_prototypes(spec);
  const int64_t image = int64_t{spec.channels} * spec.height * spec.width;
  std::vector<uint8_t> images(static_cast<size_t>(n * image));
  std::vector<int32_t> labels(static_cast<size_t>(n));
  const uint64_t stream = split == Split::kTrain ? 1 : 2;
  // Sum of four 16-bit uniforms (Irwin-Hall), rescaled to unit variance: close enough to a
  // normal and one generator call per pixel instead of a log and a cos.
  const float noise_scale = spec.noise * std::sqrt(3.0f) / 65535.0f;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    Rng rng(derive_seed(spec.seed, stream, static_cast<uint64_t>(i)));
    const auto label = static_cast<int32_t>(rng.below(static_cast<uint64_t>(spec.num_classes)));
    labels[static_cast<size_t>(i)] = label;
    const float* proto = protos.data() + label * image;
    uint8_t* out = images.data() + i * image;
    for (int64_t k = 0; k < image; ++k) {
      const uint64_t r = rng.next_u64();
      const auto sum = static_cast<float>((r & 0xffff) + ((r >> 16) & 0xffff) +
                                          ((r >> 32) & 0xffff) + (r >> 48));
      const float v = 128.0f + spec.signal * proto[k] + noise_scale * (sum - 2.0f * 65535.0f);
      out[k] = static_cast<uint8_t>(std::clamp(v, 0.0f, 255.0f) + 0.5f);
    }
  }
  // Placeholder statistics, replaced by the measured ones (train and test draw from the same
  // distribution, so either split's statistics serve).
  Normalization placeholder{std::vector<float>(static_cast<size_t>(spec.channels), 0.5f),
                            std::vector<float>(static_cast<size_t>(spec.channels), 1.0f)};
  Dataset ds("synthetic", spec.channels, spec.height, spec.width, spec.num_classes,
             std::move(images), std::move(labels), std::move(placeholder));
  ds.set_normalization(compute_normalization(ds));
  return ds;
}

}  // namespace tempo::data
