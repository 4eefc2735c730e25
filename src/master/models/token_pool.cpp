#include "master/models/token_pool.h"

#include <stdexcept>
#include <string>

namespace tempo::models {

Tensor TokenMeanPool::forward(const Tensor& x) {
  if (x.rank() != 3 || x.dim(1) == 0)
    throw std::invalid_argument("TokenMeanPool: expected [B, T>0, D], got " +
                                x.shape().to_string());
  input_shape_ = x.shape();
  const int64_t batch = x.dim(0), tokens = x.dim(1), dim = x.dim(2);
  Tensor y = Tensor::zeros({batch, dim});
  const float inv = 1.0f / static_cast<float>(tokens);
  const float* xs = x.data();
  float* ys = y.data();
#pragma omp parallel for schedule(static) if (x.numel() > 65536)
  for (int64_t b = 0; b < batch; ++b) {
    float* out = ys + b * dim;
    for (int64_t t = 0; t < tokens; ++t) {
      const float* in = xs + (b * tokens + t) * dim;
      for (int64_t d = 0; d < dim; ++d) out[d] += in[d];
    }
    for (int64_t d = 0; d < dim; ++d) out[d] *= inv;
  }
  return y;
}

Tensor TokenMeanPool::backward(const Tensor& dy) {
  const int64_t batch = input_shape_[0], tokens = input_shape_[1], dim = input_shape_[2];
  dy.expect_shape({batch, dim}, "TokenMeanPool::backward dy");
  Tensor dx(input_shape_);
  const float inv = 1.0f / static_cast<float>(tokens);
  const float* d = dy.data();
  float* dxs = dx.data();
#pragma omp parallel for schedule(static) if (dx.numel() > 65536)
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t t = 0; t < tokens; ++t)
      for (int64_t k = 0; k < dim; ++k) dxs[(b * tokens + t) * dim + k] = d[b * dim + k] * inv;
  return dx;
}

}  // namespace tempo::models
