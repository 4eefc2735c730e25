// Turning one stored image into model input: placement (padding, random crop, flip) and
// per-channel normalisation, fused into a single pass.
#pragma once

#include <cstdint>
#include <vector>

#include "master/core/random.h"
#include "master/data/dataset.h"

namespace tempo::data {

/// Channels, height and width of one image.
struct ImageGeometry {
  int channels = 0;
  int height = 0;
  int width = 0;
  int64_t size() const { return int64_t{channels} * height * width; }
};

/// Where a source image lands in an output image. Output pixel (y, x) shows source pixel
/// (y - offset_y, x' - offset_x) with x' = flip ? out_width - 1 - x : x; outside the source it
/// shows a black pixel (byte 0, normalised like any other), as torchvision's Pad/RandomCrop do
/// on PIL images before Normalize.
struct Placement {
  int offset_y = 0;
  int offset_x = 0;
  bool flip = false;
};

/// Training-time augmentation: a random crop of the image padded by crop_padding black pixels
/// on each side (torchvision RandomCrop(size, padding)) then a horizontal flip with probability
/// 1/2 (RandomHorizontalFlip) when horizontal_flip is set. The standard CIFAR recipe is {4, true}.
struct Augmentation {
  int crop_padding = 0;
  bool horizontal_flip = false;
  bool enabled() const { return crop_padding > 0 || horizontal_flip; }
};

/// The source centred in the output (resize by padding, e.g. 28x28 -> 32x32 adds 2 pixels on
/// each side; an odd excess goes to the bottom/right). Throws std::invalid_argument when the
/// output is smaller than the input.
Placement centered_placement(const ImageGeometry& in, const ImageGeometry& out);

/// `base` moved by a random crop offset in [-crop_padding, crop_padding] on each axis (uniform,
/// as RandomCrop's corner in [0, 2 * padding]) and flipped with probability 1/2 if enabled.
/// Draws exactly three values from rng, so the stream stays aligned whatever the options.
Placement random_placement(const Placement& base, const Augmentation& augmentation, Rng& rng);

/// 256 floats per channel: table[c * 256 + v] = (v / 255 - mean[c]) / std[c].
std::vector<float> normalization_table(const Normalization& normalization);

/// Writes one normalised image of geometry `out` to dst. Output channel c shows source channel
/// c, or channel 0 for every c when the source has one channel (grey -> RGB replication).
/// `table` is normalization_table() of the source's channels. Throws std::invalid_argument
/// when the channel counts are incompatible.
void render_image(const uint8_t* src, const ImageGeometry& in, float* dst, const ImageGeometry& out,
                  const Placement& placement, const float* table);

}  // namespace tempo::data
