// Pre-norm transformer encoder block (ViT).
#pragma once

#include <memory>

#include "master/core/random.h"
#include "master/nn/module.h"
#include "master/nn/residual.h"

namespace tempo::models {

/// x + attn(norm1(x)), then h + mlp(norm2(h)), on tokens [B, T, dim], as timm's ViT Block.
///
/// Children use timm's names: "norm1" (LayerNorm), "attn" (MultiHeadSelfAttention, with
/// "attn.qkv" and "attn.proj"), "norm2", "mlp" ("mlp.fc1" dim -> mlp_ratio·dim, "mlp.act" GELU,
/// "mlp.fc2"). The two nn::Residual wrappers are not reported (they hold no parameters, have no
/// products and ignore train()), so that paths stay timm's. LayerNorm eps is 1e-6 as timm.
class VitBlock final : public nn::Module {
 public:
  VitBlock(int64_t dim, int64_t heads, int64_t mlp_ratio, Rng& rng);
  std::string type() const override { return "Block"; }
  Tensor forward(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;
  void children(std::vector<std::pair<std::string, nn::Module*>>& out) override;

 private:
  std::unique_ptr<nn::Residual> attn_branch_, mlp_branch_;
};

/// LayerNorm epsilon of our ViTs (timm's partial(nn.LayerNorm, eps=1e-6)).
inline constexpr float kVitLayerNormEps = 1e-6f;

}  // namespace tempo::models
