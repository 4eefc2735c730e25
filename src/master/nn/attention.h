// Multi-head self-attention (ViT).
#pragma once

#include <memory>

#include "master/core/random.h"
#include "master/nn/linear.h"
#include "master/nn/module.h"

namespace tempo::nn {

/// x [B, T, D] -> [B, T, D], heads h, head dim D/h; scaled dot-product attention without mask.
/// Children: "qkv" (Linear D -> 3D, as timm's fused projection) and "proj" (Linear D -> D).
/// The products Q·Kᵀ and A·V go through compute().batched_matmul_forward, which keeps what their
/// backward needs (under Tempo: the blinded operands, cached on the worker for the key shift).
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
  std::unique_ptr<SavedProduct> scores_, values_;  // Q·Kᵀ and A·V, kept for backward
  Tensor attn_;                                    // softmax output [B·h, T, T]
  Shape input_shape_;
};

}  // namespace tempo::nn
