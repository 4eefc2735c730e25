// Attack 4: reconstructing training images from the first offloaded layer's blinded inputs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/view_reader.h"
#include "master/attack/recorded_layers.h"
#include "master/data/dataset.h"

namespace tempo::attack {

/// The attacker's image estimates, greyscale in [0, 1] (up to an affine map it cannot know).
struct Reconstruction {
  int64_t count = 0, height = 0, width = 0;
  std::vector<float> images;  ///< [count, height, width]
  std::string method;
};

/// Reconstructs up to `max_images` inputs of the last training step from `layer`'s blinded input
/// (never from the dataset), as images of the model's input size (`height` x `width`):
///  - channel mode: every (sample, channel) map is a scaled copy of a real feature map (spatial
///    layout is visible); each map is sign-corrected (post-ReLU maps have one sign) and divided
///    by its maximum, the channels are combined by their first principal component over the batch
///    and the result is upsampled to the input size;
///  - patch mode / Linear: rows (positions) or columns (pixels) arrive permuted with independent
///    scales, so no placement is recoverable by this attack: values are laid out in received
///    order after sign and row-scale correction (a floor, for comparison).
Reconstruction reconstruct_inputs(const ViewReader& view, const RecordedLayer& layer,
                                  int64_t height, int64_t width, int max_images);

/// How close the reconstructions came to the real images.
struct ReconstructionScore {
  double psnr = 0, ssim = 0;                  ///< mean over the reconstructions, in dB / [-1, 1]
  double control_psnr = 0, control_ssim = 0;  ///< the same scoring of pixel-shuffled estimates
  int64_t scored = 0;
};

/// Scores `rec` against the first `candidates` images of `originals` (the victim's training
/// images; the scorer may look, the attack did not): each estimate is compared with the original
/// it correlates with best (the worker does not know which sample it is), after the least-squares
/// gain and offset, cropped to the dataset's size. Both choices favour the attacker, so the
/// numbers are upper bounds. The control scores the same estimates with their pixels shuffled,
/// i.e. what the matching alone achieves on images without structure. With `png_path` non-empty,
/// writes up to 8 pairs (original | estimate) side by side.
ReconstructionScore score_reconstruction(const Reconstruction& rec, const data::Dataset& originals,
                                         int64_t candidates, const std::string& png_path);

/// PSNR (peak 1) and mean SSIM (7x7 uniform windows) of two images in [0, 1].
double psnr(const std::vector<float>& a, const std::vector<float>& b);
double ssim(const std::vector<float>& a, const std::vector<float>& b, int64_t height,
            int64_t width);

}  // namespace tempo::attack
