// 2-D convolution.
#pragma once

#include <memory>

#include "master/core/random.h"
#include "master/nn/module.h"

namespace tempo::nn {

/// y = conv2d(x, W) + b, x [N,C,H,W], W [O,C,kh,kw] (PyTorch layout), square kernel, dilation 1.
/// Initialisation: Kaiming-normal (fan_out, ReLU gain) as torchvision's ResNet; bias zero.
class Conv2d final : public Module {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, Rng& rng,
         int64_t stride = 1, int64_t padding = 0, bool bias = true);
  std::string type() const override { return "Conv2d"; }
  Tensor forward(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;
  void local_parameters(std::vector<Parameter*>& out) override;
  bool has_products() const override { return true; }

  Parameter& weight() { return weight_; }
  Parameter& bias() { return bias_; }
  const ConvGeometry& geometry() const { return geometry_; }
  int64_t in_channels() const { return in_; }
  int64_t out_channels() const { return out_; }
  int64_t kernel_size() const { return k_; }

 private:
  int64_t in_, out_, k_;
  ConvGeometry geometry_;
  bool has_bias_;
  Parameter weight_, bias_;
  std::unique_ptr<SavedProduct> saved_;
};

}  // namespace tempo::nn
