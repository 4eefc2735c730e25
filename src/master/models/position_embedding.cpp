#include "master/models/position_embedding.h"

#include <stdexcept>
#include <string>

#include "master/models/init.h"

namespace tempo::models {

PositionEmbedding::PositionEmbedding(int64_t tokens, int64_t dim, Rng& rng)
    : tokens_(tokens), dim_(dim) {
  Tensor w({tokens, dim});
  trunc_normal(w, 0.02f, rng);
  weight_ = nn::Parameter("weight", w, /*decay=*/false);
}

void PositionEmbedding::local_parameters(std::vector<nn::Parameter*>& out) {
  out.push_back(&weight_);
}

Tensor PositionEmbedding::forward(const Tensor& x) {
  if (x.rank() != 3 || x.dim(1) != tokens_ || x.dim(2) != dim_)
    throw std::invalid_argument("PositionEmbedding: expected [B, " + std::to_string(tokens_) +
                                ", " + std::to_string(dim_) + "], got " + x.shape().to_string());
  const int64_t batch = x.dim(0), plane = tokens_ * dim_;
  Tensor y(x.shape());
  const float* xs = x.data();
  const float* w = weight_.value.data();
  float* ys = y.data();
#pragma omp parallel for schedule(static) if (batch * plane > 65536)
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < plane; ++i) ys[b * plane + i] = xs[b * plane + i] + w[i];
  return y;
}

Tensor PositionEmbedding::backward(const Tensor& dy) {
  const int64_t plane = tokens_ * dim_, batch = dy.numel() / plane;
  const float* d = dy.data();
  float* g = weight_.grad.data();
  // Batch-outer, element-inner keeps the inner loop contiguous and vectorisable.
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < plane; ++i) g[i] += d[b * plane + i];
  return dy;  // identity for the input: share, do not copy
}

}  // namespace tempo::models
