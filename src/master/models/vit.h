// Vision Transformer for small images.
#pragma once

#include <memory>

#include "master/core/random.h"
#include "master/models/named_sequential.h"

namespace tempo::models {

/// Architecture of a ViT; the input geometry comes from the builder's arguments.
struct VitConfig {
  int64_t dim;        ///< token width
  int64_t depth;      ///< encoder blocks
  int64_t heads;      ///< attention heads (divide dim)
  int64_t patch;      ///< patch side (divides the image size)
  int64_t mlp_ratio;  ///< MLP hidden width = mlp_ratio·dim
};

/// "vit-tiny": dim 64, depth 4, 4 heads, patch 4, MLP ratio 4 (~0.2M parameters; for tests and
/// quick runs on a few cores).
VitConfig vit_tiny_config();
/// "vit-s4": ViT-Small (dim 384, depth 12, 6 heads, MLP ratio 4) with 4x4 patches.
VitConfig vit_s4_config();

/// "patch_embed" (PatchEmbed, "patch_embed.proj" a Conv2d) -> "pos_embed" (learned, added) ->
/// "blocks" ("blocks.0" ... pre-norm VitBlocks) -> "norm" (final LayerNorm) -> "pool" (mean over
/// tokens; no class token, see TokenMeanPool) -> "head" (Linear). Initialisation as timm: Linear
/// weights truncated-normal std 0.02 and zero biases, LayerNorm 1/0, pos_embed std 0.02.
/// Throws std::invalid_argument unless cfg.patch divides image_size and cfg.heads divides dim.
std::unique_ptr<NamedSequential> make_vit(const VitConfig& cfg, int64_t in_channels,
                                          int64_t image_size, int64_t num_classes, Rng& rng);

}  // namespace tempo::models
