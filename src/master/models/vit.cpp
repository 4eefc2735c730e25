#include "master/models/vit.h"

#include <string>

#include "master/models/init.h"
#include "master/models/model_args.h"
#include "master/models/patch_embed.h"
#include "master/models/position_embedding.h"
#include "master/models/token_pool.h"
#include "master/models/vit_block.h"
#include "master/nn/layernorm.h"
#include "master/nn/linear.h"
#include "master/nn/sequential.h"

namespace tempo::models {

VitConfig vit_tiny_config() {
  return {.dim = 64, .depth = 4, .heads = 4, .patch = 4, .mlp_ratio = 4};
}

VitConfig vit_s4_config() {
  return {.dim = 384, .depth = 12, .heads = 6, .patch = 4, .mlp_ratio = 4};
}

std::unique_ptr<NamedSequential> make_vit(const VitConfig& cfg, int64_t in_channels,
                                          int64_t image_size, int64_t num_classes, Rng& rng) {
  check_model_args("vit", in_channels, image_size, num_classes);
  if (cfg.depth <= 0) throw std::invalid_argument("vit: depth must be positive");
  auto net = std::make_unique<NamedSequential>();
  auto& embed =
      net->emplace<PatchEmbed>("patch_embed", in_channels, image_size, cfg.patch, cfg.dim, rng);
  net->emplace<PositionEmbedding>("pos_embed", embed.num_patches(), cfg.dim, rng);
  auto blocks = std::make_unique<nn::Sequential>();
  for (int64_t i = 0; i < cfg.depth; ++i)
    blocks->emplace<VitBlock>(cfg.dim, cfg.heads, cfg.mlp_ratio, rng);
  net->add("blocks", std::move(blocks));
  net->emplace<nn::LayerNorm>("norm", cfg.dim, kVitLayerNormEps);
  net->emplace<TokenMeanPool>("pool");
  net->emplace<nn::Linear>("head", cfg.dim, num_classes, rng);

  // timm's init_weights_vit_timm: every Linear (attention, MLP, head) gets N(0, 0.02²)
  // truncated weights and zero biases; small weights keep the residual stream near identity.
  for (auto& nm : nn::named_modules(*net)) {
    if (auto* lin = dynamic_cast<nn::Linear*>(nm.module)) {
      trunc_normal(lin->weight().value, 0.02f, rng);
      if (!lin->bias().value.empty()) lin->bias().value.zero();
    }
  }
  return net;
}

}  // namespace tempo::models
