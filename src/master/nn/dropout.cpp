#include "master/nn/dropout.h"

#include <stdexcept>
#include <string>
#include <vector>

namespace tempo::nn {

namespace {
// Mask generation is split into fixed-size chunks, each with its own stream seeded from rng_ in
// order: the mask depends only on the Rng state, not on the thread count, and chunks run in
// parallel.
constexpr int64_t kChunk = 1 << 14;
constexpr int64_t kParallelMin = 1 << 15;
}  // namespace

Dropout::Dropout(float p, Rng& rng) : p_(p), rng_(&rng) {
  if (!(p >= 0.0f && p <= 1.0f))
    throw std::invalid_argument("Dropout: p must be in [0, 1], got " + std::to_string(p));
}

Tensor Dropout::forward(const Tensor& x) {
  mask_ = Tensor();
  if (!training_ || p_ == 0.0f) return x;  // identity: shares the input
  const int64_t n = x.numel();
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<uint64_t> seeds(static_cast<size_t>(chunks));
  for (auto& s : seeds) s = rng_->next_u64();
  // Element i is dropped when a uniform 32-bit draw falls below p·2^32 (p = 1 drops all).
  const uint64_t threshold = static_cast<uint64_t>(static_cast<double>(p_) * 4294967296.0);
  const float scale = p_ < 1.0f ? 1.0f / (1.0f - p_) : 0.0f;
  mask_ = Tensor(x.shape());
  Tensor y(x.shape());
  const float* xd = x.data();
  float* md = mask_.data();
  float* yd = y.data();
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t c = 0; c < chunks; ++c) {
    Rng r(seeds[static_cast<size_t>(c)]);
    const int64_t begin = c * kChunk, end = std::min(n, begin + kChunk);
    for (int64_t i = begin; i < end; i += 2) {
      const uint64_t u = r.next_u64();  // two 32-bit draws
      const float m0 = (u & 0xFFFFFFFFu) >= threshold ? scale : 0.0f;
      md[i] = m0;
      yd[i] = xd[i] * m0;
      if (i + 1 < end) {
        const float m1 = (u >> 32) >= threshold ? scale : 0.0f;
        md[i + 1] = m1;
        yd[i + 1] = xd[i + 1] * m1;
      }
    }
  }
  return y;
}

Tensor Dropout::backward(const Tensor& dy) {
  if (mask_.empty()) return dy;  // the forward was the identity
  dy.expect_shape(mask_.shape(), "Dropout backward dY");
  const int64_t n = dy.numel();
  Tensor dx(dy.shape());
  const float* g = dy.data();
  const float* m = mask_.data();
  float* d = dx.data();
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) d[i] = g[i] * m[i];
  mask_ = Tensor();
  return dx;
}

}  // namespace tempo::nn
