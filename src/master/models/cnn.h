// A small LeNet-style convolutional network.
#pragma once

#include <memory>

#include "master/core/random.h"
#include "master/models/named_sequential.h"

namespace tempo::models {

/// "conv1" (3x3, 32, pad 1) "bn1" "relu1" "pool1" (max 2x2) -> "conv2" (3x3, 64, pad 1) "bn2"
/// "relu2" "pool2" -> "flatten" -> "fc1" (128) "relu3" -> "fc2" (classes). Convolutions have no
/// bias (BN follows). 28x28 inputs give 64x7x7 features, 32x32 give 64x8x8.
std::unique_ptr<NamedSequential> make_cnn(int64_t in_channels, int64_t image_size,
                                          int64_t num_classes, Rng& rng);

}  // namespace tempo::models
