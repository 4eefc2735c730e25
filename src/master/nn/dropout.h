// Inverted dropout.
#pragma once

#include "master/core/random.h"
#include "master/nn/module.h"

namespace tempo::nn {

/// In training, zeroes each element with probability p and scales the rest by 1/(1-p);
/// identity in eval. Masks come from the given seeded Rng (reproducible, checkpointable).
class Dropout final : public Module {
 public:
  Dropout(float p, Rng& rng);
  std::string type() const override { return "Dropout"; }
  Tensor forward(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;

 private:
  float p_;
  Rng* rng_;
  Tensor mask_;  // 0 or 1/(1-p)
};

}  // namespace tempo::nn
