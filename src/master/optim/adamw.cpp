#include "master/optim/adamw.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#if defined(__AVX__)
#include <immintrin.h>
#endif

namespace tempo::optim {

AdamW::AdamW(std::vector<nn::NamedParameter> params, const AdamWOptions& options)
    : Optimizer(std::move(params), options.lr), options_(options) {
  const auto in_unit = [](double b) { return b >= 0 && b < 1; };
  if (!in_unit(options.beta1) || !in_unit(options.beta2))
    throw std::invalid_argument("AdamW: betas must be in [0, 1)");
  if (!(options.eps >= 0)) throw std::invalid_argument("AdamW: eps must be >= 0");
  if (!(options.weight_decay >= 0)) throw std::invalid_argument("AdamW: weight_decay must be >= 0");
  init_slots();
}

namespace {

struct AdamWScalars {
  float decay, b1, b2, c1, c2, step_size, bc2_sqrt, eps;
};

// Elements [begin, end) of one parameter. GCC does not vectorise std::sqrt under its default
// errno semantics (it keeps a libm call per element, ~4x slower), hence explicit AVX where the
// build has it (Release: x86-64-v3) and the same arithmetic in scalar form for the rest.
void adamw_range(float* __restrict w, const float* __restrict g, float* __restrict m,
                 float* __restrict v, int64_t begin, int64_t end, const AdamWScalars& s) {
  int64_t j = begin;
#if defined(__AVX__)
  const __m256 b1 = _mm256_set1_ps(s.b1), b2 = _mm256_set1_ps(s.b2);
  const __m256 c1 = _mm256_set1_ps(s.c1), c2 = _mm256_set1_ps(s.c2);
  const __m256 decay = _mm256_set1_ps(s.decay), step_size = _mm256_set1_ps(s.step_size);
  const __m256 bc2_sqrt = _mm256_set1_ps(s.bc2_sqrt), eps = _mm256_set1_ps(s.eps);
  for (; j + 8 <= end; j += 8) {
    const __m256 gj = _mm256_loadu_ps(g + j);
    const __m256 mj =
        _mm256_add_ps(_mm256_mul_ps(b1, _mm256_loadu_ps(m + j)), _mm256_mul_ps(c1, gj));
    const __m256 vj = _mm256_add_ps(_mm256_mul_ps(b2, _mm256_loadu_ps(v + j)),
                                    _mm256_mul_ps(_mm256_mul_ps(c2, gj), gj));
    _mm256_storeu_ps(m + j, mj);
    _mm256_storeu_ps(v + j, vj);
    const __m256 denom = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vj), bc2_sqrt), eps);
    const __m256 wj = _mm256_sub_ps(_mm256_mul_ps(_mm256_loadu_ps(w + j), decay),
                                    _mm256_div_ps(_mm256_mul_ps(step_size, mj), denom));
    _mm256_storeu_ps(w + j, wj);
  }
#endif
  for (; j < end; ++j) {
    const float gj = g[j];
    const float mj = s.b1 * m[j] + s.c1 * gj;
    const float vj = s.b2 * v[j] + s.c2 * gj * gj;
    m[j] = mj;
    v[j] = vj;
    w[j] = w[j] * s.decay - s.step_size * mj / (std::sqrt(vj) / s.bc2_sqrt + s.eps);
  }
}

}  // namespace

void AdamW::update(size_t i, int64_t step) {
  nn::Parameter& p = *params_[i].param;
  const int64_t n = p.value.numel();
  // Scalars in double as PyTorch computes them, then rounded once to fp32 for the element loop.
  const double lr = this->lr();
  const double t = static_cast<double>(step);
  AdamWScalars s;
  s.decay = static_cast<float>(1.0 - (p.weight_decay ? lr * options_.weight_decay : 0.0));
  s.b1 = static_cast<float>(options_.beta1);
  s.b2 = static_cast<float>(options_.beta2);
  s.c1 = static_cast<float>(1.0 - options_.beta1);
  s.c2 = static_cast<float>(1.0 - options_.beta2);
  s.step_size = static_cast<float>(lr / (1.0 - std::pow(options_.beta1, t)));
  s.bc2_sqrt = static_cast<float>(std::sqrt(1.0 - std::pow(options_.beta2, t)));
  s.eps = static_cast<float>(options_.eps);
  float* w = p.value.data();
  const float* g = p.grad.data();
  float* m = slots_[0][i].data();
  float* v = slots_[1][i].data();
  constexpr int64_t kChunk = 4096;  // 16 KiB per array: whole cache lines, good balance
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (n > kParallelUpdateThreshold)
  for (int64_t c = 0; c < chunks; ++c)
    adamw_range(w, g, m, v, c * kChunk, std::min(n, (c + 1) * kChunk), s);
}

}  // namespace tempo::optim
