#include "master/nn/pooling.h"

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace tempo::nn {

namespace {

void check_pool_config(const char* what, int64_t k, int64_t stride, int64_t pad) {
  // PyTorch's rule: padding at most half the kernel, so every window touches the input.
  if (k <= 0 || stride <= 0 || pad < 0 || pad > k / 2)
    throw std::invalid_argument(std::string(what) + ": invalid kernel " + std::to_string(k) +
                                ", stride " + std::to_string(stride) + ", padding " +
                                std::to_string(pad) + " (padding must be at most kernel/2)");
}

/// Output extent of a pooling window sweep (floor mode, as PyTorch's default).
int64_t pooled(int64_t in, int64_t k, int64_t stride, int64_t pad) {
  return (in + 2 * pad - k) / stride + 1;
}

void check_pool_input(const char* what, const Tensor& x, int64_t k, int64_t pad) {
  if (x.rank() != 4 || x.dim(2) + 2 * pad < k || x.dim(3) + 2 * pad < k)
    throw std::invalid_argument(std::string(what) + ": input shape " + x.shape().to_string() +
                                " is not [N, C, H, W] with padded H, W of at least the kernel " +
                                std::to_string(k));
}

}  // namespace

MaxPool2d::MaxPool2d(int64_t kernel_size, int64_t stride, int64_t padding)
    : k_(kernel_size), stride_(stride), pad_(padding) {
  check_pool_config("MaxPool2d", k_, stride_, pad_);
}

Tensor MaxPool2d::forward(const Tensor& x) {
  check_pool_input("MaxPool2d", x, k_, pad_);
  const int64_t planes = x.dim(0) * x.dim(1), h = x.dim(2), w = x.dim(3);
  const int64_t oh = pooled(h, k_, stride_, pad_), ow = pooled(w, k_, stride_, pad_);
  if (h * w > std::numeric_limits<int32_t>::max())
    throw std::invalid_argument("MaxPool2d: input plane too large");
  Tensor y({x.dim(0), x.dim(1), oh, ow});
  const bool keep = training_;
  if (keep) {
    input_shape_ = x.shape();
    argmax_.resize(static_cast<size_t>(y.numel()));
  }
  const float* xd = x.data();
  float* yd = y.data();
  int32_t* am = keep ? argmax_.data() : nullptr;
#pragma omp parallel for schedule(static) if (x.numel() > 32768)
  for (int64_t p = 0; p < planes; ++p) {
    const float* in = xd + p * h * w;
    for (int64_t i = 0; i < oh; ++i) {
      const int64_t y0 = std::max<int64_t>(i * stride_ - pad_, 0);
      const int64_t y1 = std::min(i * stride_ - pad_ + k_, h);
      for (int64_t j = 0; j < ow; ++j) {
        const int64_t x0 = std::max<int64_t>(j * stride_ - pad_, 0);
        const int64_t x1 = std::min(j * stride_ - pad_ + k_, w);
        float best = -std::numeric_limits<float>::infinity();
        int64_t where = y0 * w + x0;
        bool nan = false;
        for (int64_t yy = y0; yy < y1 && !nan; ++yy)
          for (int64_t xx = x0; xx < x1 && !nan; ++xx) {
            const float v = in[yy * w + xx];
            // First maximum wins; a NaN wins and stops the search (PyTorch's rule).
            nan = std::isnan(v);
            if (v > best || nan) {
              best = v;
              where = yy * w + xx;
            }
          }
        const int64_t o = (p * oh + i) * ow + j;
        yd[o] = best;
        if (am) am[o] = static_cast<int32_t>(where);
      }
    }
  }
  return y;
}

Tensor MaxPool2d::backward(const Tensor& dy) {
  if (input_shape_.rank() != 4) throw std::logic_error("MaxPool2d::backward without a forward");
  const int64_t h = input_shape_[2], w = input_shape_[3];
  const int64_t oh = pooled(h, k_, stride_, pad_), ow = pooled(w, k_, stride_, pad_);
  dy.expect_shape({input_shape_[0], input_shape_[1], oh, ow}, "MaxPool2d::backward dY");
  Tensor dx = Tensor::zeros(input_shape_);
  const int64_t planes = input_shape_[0] * input_shape_[1];
  const float* d = dy.data();
  const int32_t* am = argmax_.data();
  float* out = dx.data();
#pragma omp parallel for schedule(static) if (dx.numel() > 32768)
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t o = p * oh * ow; o < (p + 1) * oh * ow; ++o) out[p * h * w + am[o]] += d[o];
  input_shape_ = Shape();
  return dx;
}

AvgPool2d::AvgPool2d(int64_t kernel_size, int64_t stride, int64_t padding)
    : k_(kernel_size), stride_(stride), pad_(padding) {
  check_pool_config("AvgPool2d", k_, stride_, pad_);
}

Tensor AvgPool2d::forward(const Tensor& x) {
  check_pool_input("AvgPool2d", x, k_, pad_);
  const int64_t planes = x.dim(0) * x.dim(1), h = x.dim(2), w = x.dim(3);
  const int64_t oh = pooled(h, k_, stride_, pad_), ow = pooled(w, k_, stride_, pad_);
  input_shape_ = x.shape();
  Tensor y({x.dim(0), x.dim(1), oh, ow});
  // count_include_pad: in floor mode every window lies inside the padded input, so k*k.
  const float scale = 1.0f / static_cast<float>(k_ * k_);
  const float* xd = x.data();
  float* yd = y.data();
#pragma omp parallel for schedule(static) if (x.numel() > 32768)
  for (int64_t p = 0; p < planes; ++p) {
    const float* in = xd + p * h * w;
    for (int64_t i = 0; i < oh; ++i) {
      const int64_t y0 = std::max<int64_t>(i * stride_ - pad_, 0);
      const int64_t y1 = std::min(i * stride_ - pad_ + k_, h);
      for (int64_t j = 0; j < ow; ++j) {
        const int64_t x0 = std::max<int64_t>(j * stride_ - pad_, 0);
        const int64_t x1 = std::min(j * stride_ - pad_ + k_, w);
        float s = 0;
        for (int64_t yy = y0; yy < y1; ++yy)
          for (int64_t xx = x0; xx < x1; ++xx) s += in[yy * w + xx];
        yd[(p * oh + i) * ow + j] = s * scale;
      }
    }
  }
  return y;
}

Tensor AvgPool2d::backward(const Tensor& dy) {
  if (input_shape_.rank() != 4) throw std::logic_error("AvgPool2d::backward without a forward");
  const int64_t h = input_shape_[2], w = input_shape_[3];
  const int64_t oh = pooled(h, k_, stride_, pad_), ow = pooled(w, k_, stride_, pad_);
  dy.expect_shape({input_shape_[0], input_shape_[1], oh, ow}, "AvgPool2d::backward dY");
  Tensor dx = Tensor::zeros(input_shape_);
  const int64_t planes = input_shape_[0] * input_shape_[1];
  const float scale = 1.0f / static_cast<float>(k_ * k_);
  const float* d = dy.data();
  float* dxd = dx.data();
#pragma omp parallel for schedule(static) if (dx.numel() > 32768)
  for (int64_t p = 0; p < planes; ++p) {
    float* out = dxd + p * h * w;
    for (int64_t i = 0; i < oh; ++i) {
      const int64_t y0 = std::max<int64_t>(i * stride_ - pad_, 0);
      const int64_t y1 = std::min(i * stride_ - pad_ + k_, h);
      for (int64_t j = 0; j < ow; ++j) {
        const int64_t x0 = std::max<int64_t>(j * stride_ - pad_, 0);
        const int64_t x1 = std::min(j * stride_ - pad_ + k_, w);
        const float g = d[(p * oh + i) * ow + j] * scale;
        for (int64_t yy = y0; yy < y1; ++yy)
          for (int64_t xx = x0; xx < x1; ++xx) out[yy * w + xx] += g;
      }
    }
  }
  input_shape_ = Shape();
  return dx;
}

Tensor GlobalAvgPool2d::forward(const Tensor& x) {
  if (x.rank() != 4 || x.dim(2) * x.dim(3) == 0)
    throw std::invalid_argument("GlobalAvgPool2d: input shape " + x.shape().to_string() +
                                " is not [N, C, H, W] with H, W > 0");
  input_shape_ = x.shape();
  const int64_t planes = x.dim(0) * x.dim(1), plane = x.dim(2) * x.dim(3);
  Tensor y({x.dim(0), x.dim(1)});
  const float scale = 1.0f / static_cast<float>(plane);
  const float* xd = x.data();
  float* yd = y.data();
#pragma omp parallel for schedule(static) if (x.numel() > 32768)
  for (int64_t p = 0; p < planes; ++p) {
    const float* in = xd + p * plane;
    float s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < plane; ++i) s += in[i];
    yd[p] = s * scale;
  }
  return y;
}

Tensor GlobalAvgPool2d::backward(const Tensor& dy) {
  if (input_shape_.rank() != 4)
    throw std::logic_error("GlobalAvgPool2d::backward without a forward");
  dy.expect_shape({input_shape_[0], input_shape_[1]}, "GlobalAvgPool2d::backward dY");
  const int64_t planes = input_shape_[0] * input_shape_[1];
  const int64_t plane = input_shape_[2] * input_shape_[3];
  Tensor dx(input_shape_);
  const float scale = 1.0f / static_cast<float>(plane);
  const float* d = dy.data();
  float* out = dx.data();
#pragma omp parallel for schedule(static) if (dx.numel() > 32768)
  for (int64_t p = 0; p < planes; ++p) {
    const float g = d[p] * scale;
    for (int64_t i = 0; i < plane; ++i) out[p * plane + i] = g;
  }
  input_shape_ = Shape();
  return dx;
}

}  // namespace tempo::nn
