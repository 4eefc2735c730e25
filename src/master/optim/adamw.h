// Adam with decoupled weight decay, as torch.optim.AdamW.
#pragma once

#include "master/optim/optimizer.h"

namespace tempo::optim {

struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  /// Decoupled decay (p *= 1 - lr·wd); skipped for parameters with weight_decay == false.
  double weight_decay = 1e-2;
};

/// PyTorch's AdamW (amsgrad off), step t = 1, 2, ...:
///   p *= 1 - lr·wd;  m = β1·m + (1-β1)·g;  v = β2·v + (1-β2)·g²;
///   p -= lr/(1-β1^t) · m / (sqrt(v)/sqrt(1-β2^t) + eps).
class AdamW final : public Optimizer {
 public:
  AdamW(std::vector<nn::NamedParameter> params, const AdamWOptions& options);
  std::string type() const override { return "AdamW"; }
  const AdamWOptions& options() const { return options_; }

 protected:
  std::vector<std::string> slot_names() const override { return {"exp_avg", "exp_avg_sq"}; }
  void update(size_t i, int64_t step) override;

 private:
  AdamWOptions options_;
};

}  // namespace tempo::optim
