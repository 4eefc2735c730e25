// A small multi-layer perceptron.
#pragma once

#include <memory>

#include "master/core/random.h"
#include "master/models/named_sequential.h"

namespace tempo::models {

/// "flatten" -> "fc1" (C·S·S -> 256) -> "relu1" -> "fc2" (256 -> 128) -> "relu2" -> "fc3"
/// (128 -> classes). PyTorch-default Linear initialisation.
std::unique_ptr<NamedSequential> make_mlp(int64_t in_channels, int64_t image_size,
                                          int64_t num_classes, Rng& rng);

}  // namespace tempo::models
