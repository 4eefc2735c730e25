#include "master/models/patch_embed.h"

#include <cmath>
#include <stdexcept>
#include <string>

#include "master/models/init.h"

namespace tempo::models {

namespace {

int64_t checked_grid(int64_t image_size, int64_t patch) {
  if (patch <= 0 || image_size <= 0 || image_size % patch != 0)
    throw std::invalid_argument("PatchEmbed: patch " + std::to_string(patch) +
                                " must divide image_size " + std::to_string(image_size));
  return image_size / patch;
}

// out[b] = in[b]ᵀ for `batch` row-major rows×cols matrices.
Tensor transpose_batched(const Tensor& in, int64_t batch, int64_t rows, int64_t cols,
                         const Shape& out_shape) {
  Tensor out(out_shape);
  const float* src = in.data();
  float* dst = out.data();
#pragma omp parallel for schedule(static) if (batch * rows * cols > 65536)
  for (int64_t b = 0; b < batch; ++b) {
    const float* s = src + b * rows * cols;
    float* d = dst + b * rows * cols;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) d[c * rows + r] = s[r * cols + c];
  }
  return out;
}

}  // namespace

PatchEmbed::PatchEmbed(int64_t in_channels, int64_t image_size, int64_t patch, int64_t dim,
                       Rng& rng)
    : dim_(dim),
      grid_(checked_grid(image_size, patch)),
      proj_(in_channels, dim, patch, rng, /*stride=*/patch, /*padding=*/0, /*bias=*/true) {
  const float bound = 1.0f / std::sqrt(static_cast<float>(in_channels * patch * patch));
  uniform(proj_.weight().value, bound, rng);
  uniform(proj_.bias().value, bound, rng);
}

void PatchEmbed::children(std::vector<std::pair<std::string, nn::Module*>>& out) {
  out.emplace_back("proj", &proj_);
}

Tensor PatchEmbed::forward(const Tensor& x) {
  Tensor y = proj_.forward(x);  // [N, dim, g, g]; rejects a wrong channel count or rank
  const int64_t n = y.dim(0), tokens = y.dim(2) * y.dim(3);
  if (tokens != grid_ * grid_)
    throw std::invalid_argument("PatchEmbed: input " + x.shape().to_string() + " gives " +
                                std::to_string(tokens) + " patches, expected " +
                                std::to_string(grid_ * grid_));
  return transpose_batched(y, n, dim_, tokens, {n, tokens, dim_});
}

Tensor PatchEmbed::backward(const Tensor& dy) {
  const int64_t n = dy.dim(0), tokens = grid_ * grid_;
  return proj_.backward(transpose_batched(dy, n, tokens, dim_, {n, dim_, grid_, grid_}));
}

}  // namespace tempo::models
