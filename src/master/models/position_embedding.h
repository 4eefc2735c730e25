// Learned additive position embedding for token sequences.
#pragma once

#include "master/core/random.h"
#include "master/nn/module.h"

namespace tempo::models {

/// y[b, t, :] = x[b, t, :] + weight[t, :] for x [B, tokens, dim]. Parameter "weight"
/// [tokens, dim], truncated-normal std 0.02 (as timm's pos_embed), no weight decay.
class PositionEmbedding final : public nn::Module {
 public:
  PositionEmbedding(int64_t tokens, int64_t dim, Rng& rng);
  std::string type() const override { return "PositionEmbedding"; }
  Tensor forward(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;
  void local_parameters(std::vector<nn::Parameter*>& out) override;

  nn::Parameter& weight() { return weight_; }

 private:
  int64_t tokens_, dim_;
  nn::Parameter weight_;
};

}  // namespace tempo::models
