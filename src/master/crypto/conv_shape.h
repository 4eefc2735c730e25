// The extents of one 2-D convolution, as patch mode sees them.
#pragma once

#include <cstdint>
#include <stdexcept>

#include "common/shape.h"
#include "master/nn/compute.h"

namespace tempo::crypto {

/// X [batch, in_channels, height, width] conv W [out_channels, in_channels, kh, kw] -> Y
/// [batch, out_channels, out_h, out_w] with `geometry` (stride, padding; dilation 1, groups 1).
/// Patch mode's product is Patches [positions, patch] · W_mat^T, W_mat = W as [O, patch].
struct ConvShape {
  int64_t batch = 0, in_channels = 0, height = 0, width = 0;
  int64_t out_channels = 0, kh = 0, kw = 0;
  nn::ConvGeometry geometry;

  /// From the shapes of X and W; throws std::invalid_argument when they do not make a valid conv.
  static ConvShape of(const Shape& x, const Shape& w, const nn::ConvGeometry& g) {
    if (x.rank() != 4 || w.rank() != 4 || x[1] != w[1] || g.stride_h < 1 || g.stride_w < 1 ||
        g.pad_h < 0 || g.pad_w < 0 || x[2] + 2 * g.pad_h < w[2] || x[3] + 2 * g.pad_w < w[3])
      throw std::invalid_argument("ConvShape: input " + x.to_string() + " and weight " +
                                  w.to_string() + " do not make a convolution");
    return ConvShape{x[0], x[1], x[2], x[3], w[0], w[2], w[3], g};
  }

  int64_t out_h() const { return geometry.out_h(height, kh); }
  int64_t out_w() const { return geometry.out_w(width, kw); }
  /// Rows of the patch matrix: N·H'·W' output positions, ordered (n, y, x).
  int64_t positions() const { return batch * out_h() * out_w(); }
  /// Columns of the patch matrix: C·kh·kw, ordered (c, i, j) as im2col and W's memory.
  int64_t patch() const { return in_channels * kh * kw; }

  Shape input_shape() const { return {batch, in_channels, height, width}; }
  Shape weight_shape() const { return {out_channels, in_channels, kh, kw}; }
  Shape output_shape() const { return {batch, out_channels, out_h(), out_w()}; }
};

}  // namespace tempo::crypto
