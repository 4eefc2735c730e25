#include "master/data/augment.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

namespace tempo::data {

Placement centered_placement(const ImageGeometry& in, const ImageGeometry& out) {
  if (out.height < in.height || out.width < in.width)
    throw std::invalid_argument("cannot pad a " + std::to_string(in.height) + "x" +
                                std::to_string(in.width) + " image to " +
                                std::to_string(out.height) + "x" + std::to_string(out.width));
  return {(out.height - in.height) / 2, (out.width - in.width) / 2, false};
}

Placement random_placement(const Placement& base, const Augmentation& augmentation, Rng& rng) {
  const auto span = static_cast<uint64_t>(2 * std::max(augmentation.crop_padding, 0) + 1);
  const auto dy = static_cast<int>(rng.below(span));
  const auto dx = static_cast<int>(rng.below(span));
  const bool coin = (rng.next_u64() >> 63) != 0;
  // Crop corner (dy, dx) of the padded image: output row y shows padded row y + dy, i.e.
  // source row y + dy - padding - offset.
  Placement p = base;
  p.offset_y += augmentation.crop_padding - dy;
  p.offset_x += augmentation.crop_padding - dx;
  p.flip = augmentation.horizontal_flip && coin;
  return p;
}

std::vector<float> normalization_table(const Normalization& normalization) {
  std::vector<float> table(normalization.mean.size() * 256);
  for (size_t c = 0; c < normalization.mean.size(); ++c) {
    const float inv_std = 1.0f / normalization.std[c];
    for (int v = 0; v < 256; ++v)
      table[c * 256 + static_cast<size_t>(v)] =
          (static_cast<float>(v) / 255.0f - normalization.mean[c]) * inv_std;
  }
  return table;
}

void render_image(const uint8_t* src, const ImageGeometry& in, float* dst, const ImageGeometry& out,
                  const Placement& placement, const float* table) {
  if (in.channels != out.channels && in.channels != 1)
    throw std::invalid_argument("cannot turn " + std::to_string(in.channels) + " channels into " +
                                std::to_string(out.channels));
  const int64_t out_plane = int64_t{out.height} * out.width;
  // Output columns [x_lo, x_hi) show source pixels; the rest is padding.
  int x_lo, x_hi;
  if (!placement.flip) {
    x_lo = placement.offset_x;
    x_hi = placement.offset_x + in.width;
  } else {  // source column = out.width - 1 - x - offset_x
    x_lo = out.width - placement.offset_x - in.width;
    x_hi = out.width - placement.offset_x;
  }
  x_lo = std::clamp(x_lo, 0, out.width);
  x_hi = std::clamp(x_hi, x_lo, out.width);
  for (int c = 0; c < out.channels; ++c) {
    float* plane = dst + c * out_plane;
    if (in.channels == 1 && c > 0) {  // replicated grey: the same plane again
      std::memcpy(plane, dst, static_cast<size_t>(out_plane) * sizeof(float));
      continue;
    }
    const float* lut = table + c * 256;
    const float pad = lut[0];
    for (int y = 0; y < out.height; ++y) {
      float* row = plane + int64_t{y} * out.width;
      const int sy = y - placement.offset_y;
      if (sy < 0 || sy >= in.height || x_lo == x_hi) {
        std::fill(row, row + out.width, pad);
        continue;
      }
      const uint8_t* srow = src + (int64_t{c} * in.height + sy) * in.width;
      std::fill(row, row + x_lo, pad);
      if (!placement.flip) {
        const uint8_t* s = srow + (x_lo - placement.offset_x);
        for (int x = 0; x < x_hi - x_lo; ++x) row[x_lo + x] = lut[s[x]];
      } else {  // walk the source row backwards from the column shown at x_lo
        const uint8_t* s = srow + (out.width - 1 - x_lo - placement.offset_x);
        for (int x = 0; x < x_hi - x_lo; ++x) row[x_lo + x] = lut[s[-x]];
      }
      std::fill(row + x_hi, row + out.width, pad);
    }
  }
}

}  // namespace tempo::data
