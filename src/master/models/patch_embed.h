// ViT patch embedding: non-overlapping patches projected to tokens.
#pragma once

#include <memory>

#include "master/core/random.h"
#include "master/nn/conv2d.h"
#include "master/nn/module.h"

namespace tempo::models {

/// [N, C, S, S] -> [N, (S/p)², dim]: child "proj" is a Conv2d with kernel = stride = p (so the
/// projection is an offloadable product), whose [N, dim, S/p, S/p] output is transposed to
/// tokens in row-major patch order (as timm's PatchEmbed: flatten(2).transpose(1, 2)).
/// Initialisation: PyTorch's Conv2d default, U(±1/sqrt(C·p²)) for weight and bias.
class PatchEmbed final : public nn::Module {
 public:
  /// Throws std::invalid_argument unless `patch` divides `image_size`.
  PatchEmbed(int64_t in_channels, int64_t image_size, int64_t patch, int64_t dim, Rng& rng);
  std::string type() const override { return "PatchEmbed"; }
  Tensor forward(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;
  void children(std::vector<std::pair<std::string, nn::Module*>>& out) override;

  nn::Conv2d& proj() { return proj_; }
  int64_t num_patches() const { return grid_ * grid_; }

 private:
  int64_t dim_, grid_;
  nn::Conv2d proj_;
};

}  // namespace tempo::models
