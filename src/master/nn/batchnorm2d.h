// Batch normalisation over N, H, W for each channel.
#pragma once

#include "master/nn/module.h"

namespace tempo::nn {

/// PyTorch semantics: training uses batch statistics (biased variance for normalising, unbiased
/// for the running estimate), eval uses running_mean/running_var; momentum 0.1, eps 1e-5;
/// weight (gamma) 1 and bias (beta) 0 at start. Buffers: "running_mean", "running_var".
class BatchNorm2d final : public Module {
 public:
  explicit BatchNorm2d(int64_t channels, float eps = 1e-5f, float momentum = 0.1f);
  std::string type() const override { return "BatchNorm2d"; }
  Tensor forward(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;
  void local_parameters(std::vector<Parameter*>& out) override;
  void local_buffers(std::vector<std::pair<std::string, Tensor*>>& out) override;

  Parameter& weight() { return weight_; }
  Parameter& bias() { return bias_; }
  Tensor& running_mean() { return running_mean_; }
  Tensor& running_var() { return running_var_; }

 private:
  int64_t channels_;
  float eps_, momentum_;
  Parameter weight_, bias_;
  Tensor running_mean_, running_var_;
  // For backward: the input (shared, not copied) and its per-channel mean and 1/std, from which
  // x̂ is recomputed: storing x̂ would cost the forward one more write pass over the activations.
  Tensor x_, mean_, inv_std_;
};

}  // namespace tempo::nn
