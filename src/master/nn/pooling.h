// Pooling layers.
#pragma once

#include "master/nn/module.h"

namespace tempo::nn {

/// Max pooling over kernel×kernel windows (padding with -inf).
class MaxPool2d final : public Module {
 public:
  MaxPool2d(int64_t kernel_size, int64_t stride, int64_t padding = 0);
  std::string type() const override { return "MaxPool2d"; }
  Tensor forward(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;

 private:
  int64_t k_, stride_, pad_;
  Shape input_shape_;
  std::vector<int32_t> argmax_;  // flat input index within the plane, per output element
};

/// Average pooling (count_include_pad = true, as PyTorch's default).
class AvgPool2d final : public Module {
 public:
  AvgPool2d(int64_t kernel_size, int64_t stride, int64_t padding = 0);
  std::string type() const override { return "AvgPool2d"; }
  Tensor forward(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;

 private:
  int64_t k_, stride_, pad_;
  Shape input_shape_;
};

/// Global average pooling: [N,C,H,W] -> [N,C].
class GlobalAvgPool2d final : public Module {
 public:
  std::string type() const override { return "GlobalAvgPool2d"; }
  Tensor forward(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;

 private:
  Shape input_shape_;
};

}  // namespace tempo::nn
