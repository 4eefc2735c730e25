#include "master/nn/conv2d.h"

#include <cmath>
#include <stdexcept>
#include <string>

namespace tempo::nn {

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, Rng& rng,
               int64_t stride, int64_t padding, bool bias)
    : in_(in_channels), out_(out_channels), k_(kernel_size), has_bias_(bias) {
  if (in_channels <= 0 || out_channels <= 0 || kernel_size <= 0 || stride <= 0 || padding < 0)
    throw std::invalid_argument(
        "Conv2d: invalid configuration in=" + std::to_string(in_channels) +
        " out=" + std::to_string(out_channels) + " k=" + std::to_string(kernel_size) +
        " stride=" + std::to_string(stride) + " padding=" + std::to_string(padding));
  geometry_.stride_h = geometry_.stride_w = stride;
  geometry_.pad_h = geometry_.pad_w = padding;
  // Kaiming normal, mode fan_out, ReLU gain sqrt(2) (torchvision's ResNet initialisation).
  const double stddev =
      std::sqrt(2.0 / static_cast<double>(out_channels * kernel_size * kernel_size));
  Tensor w({out_channels, in_channels, kernel_size, kernel_size});
  for (int64_t i = 0; i < w.numel(); ++i) w[i] = static_cast<float>(rng.normal() * stddev);
  weight_ = Parameter("weight", w);
  if (has_bias_) bias_ = Parameter("bias", Tensor::zeros({out_channels}), /*decay=*/false);
}

void Conv2d::local_parameters(std::vector<Parameter*>& out) {
  out.push_back(&weight_);
  if (has_bias_) out.push_back(&bias_);
}

Tensor Conv2d::forward(const Tensor& x) {
  if (x.rank() != 4 || x.dim(1) != in_ || x.dim(2) + 2 * geometry_.pad_h < k_ ||
      x.dim(3) + 2 * geometry_.pad_w < k_)
    throw std::invalid_argument("Conv2d(" + std::to_string(in_) + "->" + std::to_string(out_) +
                                ", k=" + std::to_string(k_) + "): input shape " +
                                x.shape().to_string() + " is not [N, " + std::to_string(in_) +
                                ", H, W] with a padded H, W of at least the kernel");
  saved_.reset();
  Tensor y = compute_->conv2d(x, weight_.value, geometry_, training_ ? &saved_ : nullptr);
  if (has_bias_) {
    const int64_t n = y.dim(0), plane = y.dim(2) * y.dim(3);
    const float* b = bias_.value.data();
    float* yd = y.data();
#pragma omp parallel for schedule(static) if (n * out_ * plane > 32768)
    for (int64_t p = 0; p < n * out_; ++p) {
      const float bias = b[p % out_];
      float* row = yd + p * plane;
      for (int64_t i = 0; i < plane; ++i) row[i] += bias;
    }
  }
  return y;
}

Tensor Conv2d::backward(const Tensor& dy) {
  if (!saved_) throw std::logic_error("Conv2d::backward without a training-mode forward");
  if (dy.rank() != 4 || dy.dim(1) != out_)
    throw std::invalid_argument("Conv2d::backward: dY shape " + dy.shape().to_string() +
                                " is not [N, " + std::to_string(out_) + ", H', W']");
  // Bias gradient first: conv2d_backward releases the saved forward even if it throws.
  if (has_bias_) {
    const int64_t n = dy.dim(0), plane = dy.dim(2) * dy.dim(3);
    const float* d = dy.data();
    float* gb = bias_.grad.data();
#pragma omp parallel for schedule(static) if (n * out_ * plane > 32768)
    for (int64_t o = 0; o < out_; ++o) {
      double s = 0;
      for (int64_t b = 0; b < n; ++b) {
        const float* row = d + (b * out_ + o) * plane;
        float ps = 0;
#pragma omp simd reduction(+ : ps)
        for (int64_t i = 0; i < plane; ++i) ps += row[i];
        s += ps;
      }
      gb[o] += static_cast<float>(s);
    }
  }
  // dx is always produced (also for a first layer): the seam computes both in one call.
  Tensor dx, dw;
  compute_->conv2d_backward(dy, &saved_, &dx, &dw);
  float* g = weight_.grad.data();
  const float* dwd = dw.data();
  const int64_t count = dw.numel();
#pragma omp simd
  for (int64_t i = 0; i < count; ++i) g[i] += dwd[i];
  return dx;
}

}  // namespace tempo::nn
