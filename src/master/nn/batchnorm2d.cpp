#include "master/nn/batchnorm2d.h"

#include <cmath>
#include <stdexcept>
#include <string>

namespace tempo::nn {

BatchNorm2d::BatchNorm2d(int64_t channels, float eps, float momentum)
    : channels_(channels), eps_(eps), momentum_(momentum) {
  if (channels <= 0 || !(eps > 0) || momentum < 0 || momentum > 1)
    throw std::invalid_argument("BatchNorm2d: invalid channels " + std::to_string(channels) +
                                ", eps " + std::to_string(eps) + " or momentum " +
                                std::to_string(momentum));
  weight_ = Parameter("weight", Tensor::filled({channels}, 1.0f), /*decay=*/false);
  bias_ = Parameter("bias", Tensor::zeros({channels}), /*decay=*/false);
  running_mean_ = Tensor::zeros({channels});
  running_var_ = Tensor::filled({channels}, 1.0f);
}

void BatchNorm2d::local_parameters(std::vector<Parameter*>& out) {
  out.push_back(&weight_);
  out.push_back(&bias_);
}

void BatchNorm2d::local_buffers(std::vector<std::pair<std::string, Tensor*>>& out) {
  out.emplace_back("running_mean", &running_mean_);
  out.emplace_back("running_var", &running_var_);
}

Tensor BatchNorm2d::forward(const Tensor& x) {
  if (x.rank() != 4 || x.dim(1) != channels_)
    throw std::invalid_argument("BatchNorm2d(" + std::to_string(channels_) + "): input shape " +
                                x.shape().to_string() + " is not [N, " + std::to_string(channels_) +
                                ", H, W]");
  const int64_t n = x.dim(0), c = channels_, plane = x.dim(2) * x.dim(3);
  const int64_t count = n * plane;  // values per channel
  Tensor y(x.shape());
  const float* xd = x.data();
  float* yd = y.data();
  const float* gamma = weight_.value.data();
  const float* beta = bias_.value.data();
  const bool parallel = x.numel() > 32768;

  if (!training_) {
    const float* rm = running_mean_.data();
    const float* rv = running_var_.data();
#pragma omp parallel for schedule(static) if (parallel)
    for (int64_t ch = 0; ch < c; ++ch) {
      const float scale = gamma[ch] / std::sqrt(rv[ch] + eps_);
      const float shift = beta[ch] - rm[ch] * scale;
      for (int64_t b = 0; b < n; ++b) {
        const float* in = xd + (b * c + ch) * plane;
        float* out = yd + (b * c + ch) * plane;
#pragma omp simd
        for (int64_t i = 0; i < plane; ++i) out[i] = in[i] * scale + shift;
      }
    }
    x_ = Tensor();
    return y;
  }

  if (count < 2)
    throw std::invalid_argument(
        "BatchNorm2d: training needs more than one value per channel, got " +
        x.shape().to_string());
  x_ = x;
  mean_ = Tensor({c});
  inv_std_ = Tensor({c});
  float* mu = mean_.data();
  float* is = inv_std_.data();
  float* rm = running_mean_.data();
  float* rv = running_var_.data();
  const float m = momentum_;
  // One channel's N planes are read twice (statistics, then normalisation); at ResNet sizes they
  // are still in this core's cache for the second read, so memory sees about one pass.
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t ch = 0; ch < c; ++ch) {
    // Shifted sums (shift = first value) keep the one-pass variance accurate when |mean| >> std.
    const float shift = xd[ch * plane];
    double s1 = 0, s2 = 0;
    for (int64_t b = 0; b < n; ++b) {
      const float* in = xd + (b * c + ch) * plane;
      float p1 = 0, p2 = 0;
#pragma omp simd reduction(+ : p1, p2)
      for (int64_t i = 0; i < plane; ++i) {
        const float d = in[i] - shift;
        p1 += d;
        p2 += d * d;
      }
      s1 += p1;
      s2 += p2;
    }
    const double mean_shifted = s1 / static_cast<double>(count);
    const double var = std::max(0.0, s2 / static_cast<double>(count) - mean_shifted * mean_shifted);
    const double mean = mean_shifted + shift;
    const float inv = static_cast<float>(1.0 / std::sqrt(var + static_cast<double>(eps_)));
    is[ch] = inv;
    const float fmean = static_cast<float>(mean);
    mu[ch] = fmean;
    const float g = gamma[ch], bt = beta[ch];
    for (int64_t b = 0; b < n; ++b) {
      const int64_t off = (b * c + ch) * plane;
#pragma omp simd
      for (int64_t i = 0; i < plane; ++i) {
        const float h = (xd[off + i] - fmean) * inv;
        yd[off + i] = h * g + bt;
      }
    }
    // PyTorch: the running variance uses the unbiased estimate.
    const double unbiased = var * static_cast<double>(count) / static_cast<double>(count - 1);
    rm[ch] = static_cast<float>((1.0 - m) * rm[ch] + m * mean);
    rv[ch] = static_cast<float>((1.0 - m) * rv[ch] + m * unbiased);
  }
  return y;
}

Tensor BatchNorm2d::backward(const Tensor& dy) {
  if (x_.empty()) throw std::logic_error("BatchNorm2d::backward without a training-mode forward");
  dy.expect_shape(x_.shape(), "BatchNorm2d::backward dY");
  const int64_t n = dy.dim(0), c = channels_, plane = dy.dim(2) * dy.dim(3);
  const double count = static_cast<double>(n * plane);
  Tensor dx(dy.shape());
  const float* d = dy.data();
  const float* xd = x_.data();
  const float* mu = mean_.data();
  const float* is = inv_std_.data();
  const float* gamma = weight_.value.data();
  float* gg = weight_.grad.data();
  float* gb = bias_.grad.data();
  float* out = dx.data();
  // dx = γ·inv_std·(dy − mean(dy) − x̂·mean(dy·x̂)); dγ = Σ dy·x̂, dβ = Σ dy.
#pragma omp parallel for schedule(static) if (dy.numel() > 32768)
  for (int64_t ch = 0; ch < c; ++ch) {
    // x̂ = (x - mean)·inv_std exactly as the forward computed it.
    const float mean = mu[ch], inv = is[ch];
    double sdy = 0, sdyx = 0;
    for (int64_t b = 0; b < n; ++b) {
      const int64_t off = (b * c + ch) * plane;
      float p1 = 0, p2 = 0;
#pragma omp simd reduction(+ : p1, p2)
      for (int64_t i = 0; i < plane; ++i) {
        p1 += d[off + i];
        p2 += d[off + i] * ((xd[off + i] - mean) * inv);
      }
      sdy += p1;
      sdyx += p2;
    }
    gg[ch] += static_cast<float>(sdyx);
    gb[ch] += static_cast<float>(sdy);
    const float k = gamma[ch] * inv;
    const float mdy = static_cast<float>(sdy / count);
    const float mdyx = static_cast<float>(sdyx / count);
    for (int64_t b = 0; b < n; ++b) {
      const int64_t off = (b * c + ch) * plane;
#pragma omp simd
      for (int64_t i = 0; i < plane; ++i)
        out[off + i] = k * (d[off + i] - mdy - ((xd[off + i] - mean) * inv) * mdyx);
    }
  }
  x_ = Tensor();
  return dx;
}

}  // namespace tempo::nn
