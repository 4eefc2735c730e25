#include "master/optim/sgd.h"

#include <stdexcept>

namespace tempo::optim {

SGD::SGD(std::vector<nn::NamedParameter> params, const SgdOptions& options)
    : Optimizer(std::move(params), options.lr), options_(options) {
  if (!(options.momentum >= 0)) throw std::invalid_argument("SGD: momentum must be >= 0");
  if (!(options.weight_decay >= 0)) throw std::invalid_argument("SGD: weight_decay must be >= 0");
  if (options.nesterov && options.momentum <= 0)
    throw std::invalid_argument("SGD: Nesterov momentum requires momentum > 0");
  init_slots();
}

std::vector<std::string> SGD::slot_names() const {
  if (options_.momentum > 0) return {"momentum_buffer"};
  return {};
}

void SGD::update(size_t i, int64_t /*step*/) {
  nn::Parameter& p = *params_[i].param;
  const int64_t n = p.value.numel();
  float* w = p.value.data();
  const float* g = p.grad.data();
  const auto rate = static_cast<float>(lr());
  const float wd = p.weight_decay ? static_cast<float>(options_.weight_decay) : 0.0f;
  const float mu = static_cast<float>(options_.momentum);
  if (mu == 0.0f) {
#pragma omp parallel for simd schedule(static) if (n > kParallelUpdateThreshold)
    for (int64_t j = 0; j < n; ++j) w[j] -= rate * (g[j] + wd * w[j]);
    return;
  }
  float* buf = slots_[0][i].data();
  const bool nesterov = options_.nesterov;
#pragma omp parallel for simd schedule(static) if (n > kParallelUpdateThreshold)
  for (int64_t j = 0; j < n; ++j) {
    const float d = g[j] + wd * w[j];
    const float b = mu * buf[j] + d;
    buf[j] = b;
    w[j] -= rate * (nesterov ? d + mu * b : b);
  }
}

}  // namespace tempo::optim
