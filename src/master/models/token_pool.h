// Mean pooling over tokens (the ViT's classifier input).
#pragma once

#include "master/nn/module.h"

namespace tempo::models {

/// [B, T, D] -> [B, D], the mean over the T tokens. Our ViTs pool this way instead of using a
/// class token (timm's global_pool="avg"): no extra parameter, every token gets a gradient, and
/// it trains at least as well on small images.
class TokenMeanPool final : public nn::Module {
 public:
  std::string type() const override { return "TokenMeanPool"; }
  Tensor forward(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;

 private:
  Shape input_shape_;
};

}  // namespace tempo::models
