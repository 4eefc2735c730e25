// Flatten all but the batch dimension.
#pragma once

#include "master/nn/module.h"

namespace tempo::nn {

/// [N, ...] -> [N, prod(...)]; shares storage (no copy).
class Flatten final : public Module {
 public:
  std::string type() const override { return "Flatten"; }
  Tensor forward(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;

 private:
  Shape input_shape_;
};

}  // namespace tempo::nn
