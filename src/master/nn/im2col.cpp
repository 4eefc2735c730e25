#include "master/nn/im2col.h"

#include <cstring>

namespace tempo::nn {

void im2col(const float* image, int64_t channels, int64_t height, int64_t width, int64_t kh,
            int64_t kw, const ConvGeometry& g, float* cols) {
  const int64_t oh = g.out_h(height, kh), ow = g.out_w(width, kw);
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t i = 0; i < kh; ++i)
      for (int64_t j = 0; j < kw; ++j) {
        float* row = cols + ((c * kh + i) * kw + j) * oh * ow;
        for (int64_t y = 0; y < oh; ++y) {
          const int64_t iy = y * g.stride_h - g.pad_h + i;
          float* out = row + y * ow;
          if (iy < 0 || iy >= height) {
            std::memset(out, 0, sizeof(float) * static_cast<size_t>(ow));
            continue;
          }
          const float* in = image + (c * height + iy) * width;
          for (int64_t x = 0; x < ow; ++x) {
            const int64_t ix = x * g.stride_w - g.pad_w + j;
            out[x] = (ix >= 0 && ix < width) ? in[ix] : 0.0f;
          }
        }
      }
}

void col2im(const float* cols, int64_t channels, int64_t height, int64_t width, int64_t kh,
            int64_t kw, const ConvGeometry& g, float* image) {
  const int64_t oh = g.out_h(height, kh), ow = g.out_w(width, kw);
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t i = 0; i < kh; ++i)
      for (int64_t j = 0; j < kw; ++j) {
        const float* row = cols + ((c * kh + i) * kw + j) * oh * ow;
        for (int64_t y = 0; y < oh; ++y) {
          const int64_t iy = y * g.stride_h - g.pad_h + i;
          if (iy < 0 || iy >= height) continue;
          float* out = image + (c * height + iy) * width;
          const float* in = row + y * ow;
          for (int64_t x = 0; x < ow; ++x) {
            const int64_t ix = x * g.stride_w - g.pad_w + j;
            if (ix >= 0 && ix < width) out[ix] += in[x];
          }
        }
      }
}

}  // namespace tempo::nn
