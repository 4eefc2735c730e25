#include "master/nn/layernorm.h"

#include <omp.h>

#include <cmath>
#include <stdexcept>
#include <vector>

namespace tempo::nn {

namespace {
constexpr int64_t kParallelMin = 1 << 15;  // elements; below it one thread is faster
}  // namespace

LayerNorm::LayerNorm(int64_t features, float eps) : features_(features), eps_(eps) {
  if (features <= 0) throw std::invalid_argument("LayerNorm: features must be positive");
  if (!(eps > 0.0f)) throw std::invalid_argument("LayerNorm: eps must be positive");
  weight_ = Parameter("weight", Tensor::filled({features}, 1.0f), /*decay=*/false);
  bias_ = Parameter("bias", Tensor::zeros({features}), /*decay=*/false);
}

void LayerNorm::local_parameters(std::vector<Parameter*>& out) {
  out.push_back(&weight_);
  out.push_back(&bias_);
}

Tensor LayerNorm::forward(const Tensor& x) {
  if (x.rank() < 1 || x.dim(x.rank() - 1) != features_)
    throw std::invalid_argument("LayerNorm(" + std::to_string(features_) +
                                "): last dimension of input " + x.shape().to_string() +
                                " must equal the feature count");
  const int64_t f = features_, rows = x.numel() / f;
  Tensor y(x.shape());
  const bool keep = training_;
  if (keep) {
    x_hat_ = Tensor(x.shape());
    inv_std_ = Tensor({rows});
  } else {
    x_hat_ = inv_std_ = Tensor();
  }
  const float* xd = x.data();
  const float* w = weight_.value.data();
  const float* b = bias_.value.data();
  float* yd = y.data();
  float* xh = keep ? x_hat_.data() : nullptr;
  float* is = keep ? inv_std_.data() : nullptr;
  const float inv_f = 1.0f / static_cast<float>(f);
  // One row at a time while it sits in L1: mean, then the centred variance (two passes over the
  // cached row are more accurate than E[x²]-E[x]² and cost no extra memory traffic), then write.
#pragma omp parallel for schedule(static) if (rows * f > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = xd + r * f;
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < f; ++j) sum += xr[j];
    const float mean = sum * inv_f;
    float sq = 0.0f;
#pragma omp simd reduction(+ : sq)
    for (int64_t j = 0; j < f; ++j) sq += (xr[j] - mean) * (xr[j] - mean);
    const float inv_std = 1.0f / std::sqrt(sq * inv_f + eps_);
    float* yr = yd + r * f;
    if (keep) {
      float* hr = xh + r * f;
      for (int64_t j = 0; j < f; ++j) {
        const float h = (xr[j] - mean) * inv_std;
        hr[j] = h;
        yr[j] = h * w[j] + b[j];
      }
      is[r] = inv_std;
    } else {
      for (int64_t j = 0; j < f; ++j) yr[j] = (xr[j] - mean) * inv_std * w[j] + b[j];
    }
  }
  return y;
}

// With g = dy·weight:  dx = inv_std · (g - mean(g) - x̂ · mean(g·x̂))  per row;
// dweight = Σ_rows dy·x̂, dbias = Σ_rows dy (per-thread partial sums, then one reduction).
Tensor LayerNorm::backward(const Tensor& dy) {
  if (x_hat_.empty()) throw std::logic_error("LayerNorm: backward without a training forward");
  dy.expect_shape(x_hat_.shape(), "LayerNorm backward dY");
  const int64_t f = features_, rows = dy.numel() / f;
  Tensor dx(dy.shape());
  const float* g = dy.data();
  const float* xh = x_hat_.data();
  const float* is = inv_std_.data();
  const float* w = weight_.value.data();
  float* d = dx.data();
  const float inv_f = 1.0f / static_cast<float>(f);
  const bool parallel = rows * f > kParallelMin;
  const int threads = parallel ? omp_get_max_threads() : 1;
  std::vector<float> partial(static_cast<size_t>(threads) * 2 * static_cast<size_t>(f), 0.0f);
#pragma omp parallel num_threads(threads) if (parallel)
  {
    float* dw = partial.data() + static_cast<size_t>(omp_get_thread_num()) * 2 * f;
    float* db = dw + f;
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const float* gr = g + r * f;
      const float* hr = xh + r * f;
      float sg = 0.0f, sgh = 0.0f;
#pragma omp simd reduction(+ : sg, sgh)
      for (int64_t j = 0; j < f; ++j) {
        const float gw = gr[j] * w[j];
        sg += gw;
        sgh += gw * hr[j];
        dw[j] += gr[j] * hr[j];
        db[j] += gr[j];
      }
      const float mg = sg * inv_f, mgh = sgh * inv_f, s = is[r];
      float* dr = d + r * f;
      for (int64_t j = 0; j < f; ++j) dr[j] = s * (gr[j] * w[j] - mg - hr[j] * mgh);
    }
  }
  float* gw = weight_.grad.data();
  float* gb = bias_.grad.data();
  for (int t = 0; t < threads; ++t) {
    const float* dw = partial.data() + static_cast<size_t>(t) * 2 * f;
    for (int64_t j = 0; j < f; ++j) {
      gw[j] += dw[j];
      gb[j] += dw[f + j];
    }
  }
  x_hat_ = inv_std_ = Tensor();
  return dx;
}

}  // namespace tempo::nn
