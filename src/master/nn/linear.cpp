#include "master/nn/linear.h"

#include <cmath>
#include <stdexcept>

namespace tempo::nn {

Linear::Linear(int64_t in_features, int64_t out_features, Rng& rng, bool bias)
    : in_(in_features), out_(out_features), has_bias_(bias) {
  const float bound = 1.0f / std::sqrt(static_cast<float>(in_features));
  Tensor w({in_features, out_features});
  for (int64_t i = 0; i < w.numel(); ++i) w[i] = rng.uniform(-bound, bound);
  weight_ = Parameter("weight", w);
  if (has_bias_) {
    Tensor b({out_features});
    for (int64_t i = 0; i < b.numel(); ++i) b[i] = rng.uniform(-bound, bound);
    bias_ = Parameter("bias", b, /*decay=*/false);
  }
}

void Linear::local_parameters(std::vector<Parameter*>& out) {
  out.push_back(&weight_);
  if (has_bias_) out.push_back(&bias_);
}

Tensor Linear::forward(const Tensor& x) {
  if (x.rank() < 2 || x.dim(x.rank() - 1) != in_)
    throw std::invalid_argument("Linear(" + std::to_string(in_) + "->" + std::to_string(out_) +
                                "): input shape " + x.shape().to_string());
  input_shape_ = x.shape();
  const int64_t rows = x.numel() / in_;
  Tensor y =
      compute_->matmul(x.reshaped({rows, in_}), weight_.value, training_ ? &saved_ : nullptr);
  if (has_bias_) {
    const float* b = bias_.value.data();
    float* yd = y.data();
#pragma omp parallel for schedule(static) if (rows * out_ > 65536)
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < out_; ++j) yd[r * out_ + j] += b[j];
  }
  Shape out_shape = input_shape_;
  out_shape[out_shape.rank() - 1] = out_;
  return y.reshaped(out_shape);
}

Tensor Linear::backward(const Tensor& dy) {
  const int64_t rows = dy.numel() / out_;
  Tensor dy2 = dy.reshaped({rows, out_});
  Tensor dx, dw;
  compute_->matmul_backward(dy2, &saved_, &dx, &dw);
  float* g = weight_.grad.data();
  for (int64_t i = 0; i < dw.numel(); ++i) g[i] += dw[i];
  if (has_bias_) {
    float* gb = bias_.grad.data();
    const float* d = dy2.data();
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < out_; ++j) gb[j] += d[r * out_ + j];
  }
  return dx.reshaped(input_shape_);
}

}  // namespace tempo::nn
