#include "master/nn/activations.h"

#include <stdexcept>

#include "master/nn/vec_math.h"

namespace tempo::nn {

namespace {
// Below this many elements the OpenMP fork/join costs more than the loop.
constexpr int64_t kParallelMin = 1 << 15;

void expect_same_shape(const Tensor& dy, const Tensor& cached, const char* what) {
  if (cached.empty()) throw std::logic_error(std::string(what) + ": backward without forward");
  dy.expect_shape(cached.shape(), std::string(what) + " backward dY");
}
}  // namespace

Tensor ReLU::forward(const Tensor& x) {
  const int64_t n = x.numel();
  Tensor y(x.shape());
  const float* xd = x.data();
  float* yd = y.data();
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) yd[i] = xd[i] > 0.0f ? xd[i] : 0.0f;
  // The output alone decides the gradient (y > 0 iff x > 0), and callers keep it alive anyway.
  y_ = training_ ? y : Tensor();
  return y;
}

Tensor ReLU::backward(const Tensor& dy) {
  expect_same_shape(dy, y_, "ReLU");
  const int64_t n = dy.numel();
  Tensor dx(dy.shape());
  const float* yd = y_.data();
  const float* g = dy.data();
  float* d = dx.data();
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) d[i] = yd[i] > 0.0f ? g[i] : 0.0f;
  y_ = Tensor();
  return dx;
}

// GELU(x) = x·Φ(x), Φ(x) = (1 + erf(x/√2))/2;  GELU'(x) = Φ(x) + x·φ(x), φ(x) = e^{-x²/2}/√(2π).
Tensor GELU::forward(const Tensor& x) {
  const int64_t n = x.numel();
  Tensor y(x.shape());
  const float* xd = x.data();
  float* yd = y.data();
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const float v = xd[i];
    yd[i] = 0.5f * v * (1.0f + vec::erf(v * 0.70710678118654752f));
  }
  x_ = training_ ? x : Tensor();
  return y;
}

Tensor GELU::backward(const Tensor& dy) {
  expect_same_shape(dy, x_, "GELU");
  const int64_t n = dy.numel();
  Tensor dx(dy.shape());
  const float* xd = x_.data();
  const float* g = dy.data();
  float* d = dx.data();
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    // Φ and φ share e^{-x²/2}: erf(x/√2) needs e^{-(x/√2)²}, one exponential instead of two.
    const float v = xd[i];
    const float u = v * 0.70710678118654752f;
    const float e = vec::exp(-u * u);
    const float cdf = 0.5f * (1.0f + vec::erf_given_exp(u, e));
    const float pdf = 0.39894228040143268f * e;
    d[i] = g[i] * (cdf + v * pdf);
  }
  x_ = Tensor();
  return dx;
}

}  // namespace tempo::nn
