// Layer normalisation over the last dimension.
#pragma once

#include "master/nn/module.h"

namespace tempo::nn {

/// y = (x - mean) / sqrt(var + eps) · weight + bias over the last dimension (size `features`).
class LayerNorm final : public Module {
 public:
  explicit LayerNorm(int64_t features, float eps = 1e-5f);
  std::string type() const override { return "LayerNorm"; }
  Tensor forward(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;
  void local_parameters(std::vector<Parameter*>& out) override;

  Parameter& weight() { return weight_; }
  Parameter& bias() { return bias_; }

 private:
  int64_t features_;
  float eps_;
  Parameter weight_, bias_;
  Tensor x_hat_, inv_std_;
};

}  // namespace tempo::nn
