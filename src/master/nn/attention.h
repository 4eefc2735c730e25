// Multi-head self-attention (ViT).
#pragma once

#include <memory>

#include "master/core/random.h"
#include "master/nn/linear.h"
#include "master/nn/module.h"

namespace tempo::nn {

/// x [B, T, D] -> [B, T, D], heads h, head dim D/h; scaled dot-product attention without mask.
/// Children: "qkv" (Linear D -> 3D, as timm's fused projection) and "proj" (Linear D -> D).
/// The products Q·Kᵀ and A·V go through compute().batched_matmul (both operands are activations:
/// PROTOCOL.md section 4 says they are blinded with fresh keys in forward and backward alike).
class MultiHeadSelfAttention final : public Module {
 public:
  MultiHeadSelfAttention(int64_t dim, int64_t heads, Rng& rng);
  std::string type() const override { return "MultiHeadSelfAttention"; }
  Tensor forward(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;
  void children(std::vector<std::pair<std::string, Module*>>& out) override;
  bool has_products() const override { return true; }

  Linear& qkv() { return *qkv_; }
  Linear& proj() { return *proj_; }
  int64_t heads() const { return heads_; }

 private:
  int64_t dim_, heads_;
  std::unique_ptr<Linear> qkv_, proj_;
  Tensor q_, k_, v_, attn_;  // [B·h, T, hd] and [B·h, T, T], cached for backward
  Shape input_shape_;
};

}  // namespace tempo::nn
