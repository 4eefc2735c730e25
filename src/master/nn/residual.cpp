#include "master/nn/residual.h"

#include <stdexcept>

namespace tempo::nn {

namespace {
constexpr int64_t kParallelMin = 1 << 15;

/// a + b into a new tensor: neither operand is written, since either may be a tensor that a
/// layer cached for its backward (ReLU keeps its output).
Tensor add(const Tensor& a, const Tensor& b, const char* what) {
  if (a.shape() != b.shape())
    throw std::invalid_argument(std::string("Residual: ") + what + " shapes differ: " +
                                a.shape().to_string() + " vs " + b.shape().to_string());
  Tensor c(a.shape());
  const int64_t n = a.numel();
  const float* ad = a.data();
  const float* bd = b.data();
  float* cd = c.data();
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) cd[i] = ad[i] + bd[i];
  return c;
}
}  // namespace

Residual::Residual(std::unique_ptr<Module> body, std::unique_ptr<Module> shortcut)
    : body_(std::move(body)), shortcut_(std::move(shortcut)) {
  if (!body_) throw std::invalid_argument("Residual: body must not be null");
}

void Residual::children(std::vector<std::pair<std::string, Module*>>& out) {
  out.emplace_back("body", body_.get());
  if (shortcut_) out.emplace_back("shortcut", shortcut_.get());
}

Tensor Residual::forward(const Tensor& x) {
  Tensor b = body_->forward(x);
  return add(b, shortcut_ ? shortcut_->forward(x) : x, "body and shortcut outputs");
}

Tensor Residual::backward(const Tensor& dy) {
  Tensor db = body_->backward(dy);
  return add(db, shortcut_ ? shortcut_->backward(dy) : dy, "body and shortcut input gradients");
}

}  // namespace tempo::nn
