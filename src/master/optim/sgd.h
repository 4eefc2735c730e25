// Stochastic gradient descent with momentum, as torch.optim.SGD (dampening 0).
#pragma once

#include "master/optim/optimizer.h"

namespace tempo::optim {

struct SgdOptions {
  double lr = 0.1;
  double momentum = 0.0;
  bool nesterov = false;
  /// L2 penalty added to the gradient; skipped for parameters with weight_decay == false.
  double weight_decay = 0.0;
};

/// PyTorch's SGD with dampening 0:
///   g = grad + wd·p;  buf = momentum·buf + g;  g = nesterov ? g + momentum·buf : buf;
///   p -= lr·g.
/// (PyTorch starts buf at g on the first step, which equals a zero buffer when dampening is 0.)
class SGD final : public Optimizer {
 public:
  SGD(std::vector<nn::NamedParameter> params, const SgdOptions& options);
  std::string type() const override { return "SGD"; }
  const SgdOptions& options() const { return options_; }

 protected:
  std::vector<std::string> slot_names() const override;
  void update(size_t i, int64_t step) override;

 private:
  SgdOptions options_;
};

}  // namespace tempo::optim
