#include "master/nn/loss.h"

#include <cmath>
#include <stdexcept>
#include <string>

#include "master/nn/vec_math.h"

namespace tempo::nn {

namespace {
constexpr int64_t kParallelMin = 1 << 14;  // elements; below it one thread is faster
}  // namespace

// Per row, with lse = max + log Σ exp(z - max) and log p_c = z_c - lse:
//   loss = -(1-ε)·log p_y - (ε/C)·Σ_c log p_c = lse - (1-ε)·z_y - (ε/C)·Σ_c z_c.
// The row's probabilities are kept for the backward, dL/dz = (p - target) / N.
float CrossEntropyLoss::forward(const Tensor& logits, const std::vector<int32_t>& labels) {
  if (logits.rank() != 2 || logits.dim(1) == 0)
    throw std::invalid_argument("CrossEntropyLoss: logits must be [N, classes], got " +
                                logits.shape().to_string());
  const int64_t n = logits.dim(0), c = logits.dim(1);
  if (static_cast<int64_t>(labels.size()) != n)
    throw std::invalid_argument("CrossEntropyLoss: " + std::to_string(labels.size()) +
                                " labels for " + std::to_string(n) + " rows of logits");
  if (n == 0) throw std::invalid_argument("CrossEntropyLoss: empty batch");
  if (!(smoothing_ >= 0.0f && smoothing_ <= 1.0f))
    throw std::invalid_argument("CrossEntropyLoss: label smoothing must be in [0, 1], got " +
                                std::to_string(smoothing_));
  for (int64_t i = 0; i < n; ++i) {
    const int32_t y = labels[static_cast<size_t>(i)];
    if (y < 0 || y >= c)
      throw std::invalid_argument("CrossEntropyLoss: label " + std::to_string(y) + " at row " +
                                  std::to_string(i) + " is outside [0, " + std::to_string(c) + ")");
  }
  probs_ = Tensor(logits.shape());
  labels_ = labels;
  const float* z = logits.data();
  float* p = probs_.data();
  const double eps = smoothing_;
  double total = 0.0;
  int64_t correct = 0;
#pragma omp parallel for schedule(static) reduction(+ : total, correct) if (n * c > kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const float* zr = z + i * c;
    float* pr = p + i * c;
    int64_t arg = 0;
    for (int64_t j = 1; j < c; ++j)
      if (zr[j] > zr[arg]) arg = j;
    const float mx = zr[arg];
    float sum = 0.0f, zsum = 0.0f;
#pragma omp simd reduction(+ : sum, zsum)
    for (int64_t j = 0; j < c; ++j) {
      pr[j] = vec::exp(zr[j] - mx);
      sum += pr[j];
      zsum += zr[j];
    }
    const float inv = 1.0f / sum;
#pragma omp simd
    for (int64_t j = 0; j < c; ++j) pr[j] *= inv;
    const int32_t y = labels[static_cast<size_t>(i)];
    const double lse = double(mx) + std::log(double(sum));
    total += lse - (1.0 - eps) * zr[y] - eps / double(c) * zsum;
    correct += arg == y ? 1 : 0;
  }
  correct_ = correct;
  return static_cast<float>(total / double(n));
}

Tensor CrossEntropyLoss::backward() const {
  if (probs_.empty()) throw std::logic_error("CrossEntropyLoss: backward without forward");
  const int64_t n = probs_.dim(0), c = probs_.dim(1);
  Tensor d(probs_.shape());
  const float inv_n = 1.0f / static_cast<float>(n);
  const float off = smoothing_ / static_cast<float>(c);  // target of every class
  const float on = 1.0f - smoothing_;                    // extra target of the label
  const float* p = probs_.data();
  float* dd = d.data();
#pragma omp parallel for schedule(static) if (n * c > kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
#pragma omp simd
    for (int64_t j = 0; j < c; ++j) dd[i * c + j] = (p[i * c + j] - off) * inv_n;
    dd[i * c + labels_[static_cast<size_t>(i)]] -= on * inv_n;
  }
  return d;
}

}  // namespace tempo::nn
