// A deterministic synthetic image dataset with a learnable signal, for tests and benchmarks.
#pragma once

#include <cstdint>

#include "master/data/dataset.h"

namespace tempo::data {

/// Describes a synthetic dataset. Both splits share the class prototypes (so a model trained on
/// the train split generalises to the test split) but draw different samples.
struct SyntheticSpec {
  int64_t train_size = 1024;
  int64_t test_size = 256;
  int channels = 3;
  int height = 32;
  int width = 32;
  int num_classes = 10;
  uint64_t seed = 0;
  /// Pixel = clamp(128 + signal * prototype + noise * n) with prototype in [-1, 1] (smooth,
  /// per class and channel) and n approximately standard normal, in 0..255 units.
  float signal = 48.0f;
  float noise = 32.0f;
};

/// Generates the split: labels uniform over classes, images = class prototype plus noise.
/// A pure function of (spec, split), independent of the thread count. The normalisation is
/// computed from the generated images. Throws std::invalid_argument on a non-positive size.
Dataset make_synthetic(const SyntheticSpec& spec, Split split);

}  // namespace tempo::data
