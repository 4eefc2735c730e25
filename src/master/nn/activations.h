// Element-wise activations.
#pragma once

#include "master/nn/module.h"

namespace tempo::nn {

class ReLU final : public Module {
 public:
  std::string type() const override { return "ReLU"; }
  Tensor forward(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;

 private:
  Tensor y_;
};

/// GELU, exact (erf) form as PyTorch's default.
class GELU final : public Module {
 public:
  std::string type() const override { return "GELU"; }
  Tensor forward(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;

 private:
  Tensor x_;
};

}  // namespace tempo::nn
