// Lowering of a 2-D convolution to a matrix product (used by plain conv and by patch mode).
#pragma once

#include <cstdint>

#include "master/nn/compute.h"

namespace tempo::nn {

/// Patch matrix of one image: rows = C·kh·kw, cols = H'·W' (the layout GEMM wants for Y = W·cols).
void im2col(const float* image, int64_t channels, int64_t height, int64_t width, int64_t kh,
            int64_t kw, const ConvGeometry& g, float* cols);
/// Adjoint of im2col: accumulates a patch matrix back into an image (which it does not clear).
void col2im(const float* cols, int64_t channels, int64_t height, int64_t width, int64_t kh,
            int64_t kw, const ConvGeometry& g, float* image);

}  // namespace tempo::nn
