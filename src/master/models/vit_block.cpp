#include "master/models/vit_block.h"

#include <stdexcept>

#include "master/models/named_sequential.h"
#include "master/nn/activations.h"
#include "master/nn/attention.h"
#include "master/nn/layernorm.h"
#include "master/nn/linear.h"

namespace tempo::models {

VitBlock::VitBlock(int64_t dim, int64_t heads, int64_t mlp_ratio, Rng& rng) {
  if (dim <= 0 || heads <= 0 || dim % heads != 0 || mlp_ratio <= 0)
    throw std::invalid_argument("VitBlock: heads must divide dim, all sizes positive");
  auto attn = std::make_unique<NamedSequential>();
  attn->emplace<nn::LayerNorm>("norm1", dim, kVitLayerNormEps);
  attn->emplace<nn::MultiHeadSelfAttention>("attn", dim, heads, rng);
  attn_branch_ = std::make_unique<nn::Residual>(std::move(attn));

  auto mlp = std::make_unique<NamedSequential>();
  mlp->emplace<nn::Linear>("fc1", dim, dim * mlp_ratio, rng);
  mlp->emplace<nn::GELU>("act");
  mlp->emplace<nn::Linear>("fc2", dim * mlp_ratio, dim, rng);
  auto body = std::make_unique<NamedSequential>();
  body->emplace<nn::LayerNorm>("norm2", dim, kVitLayerNormEps);
  body->add("mlp", std::move(mlp));
  mlp_branch_ = std::make_unique<nn::Residual>(std::move(body));
}

Tensor VitBlock::forward(const Tensor& x) { return mlp_branch_->forward(attn_branch_->forward(x)); }

Tensor VitBlock::backward(const Tensor& dy) {
  return attn_branch_->backward(mlp_branch_->backward(dy));
}

void VitBlock::children(std::vector<std::pair<std::string, nn::Module*>>& out) {
  attn_branch_->body().children(out);
  mlp_branch_->body().children(out);
}

}  // namespace tempo::models
