// ResNet-18 and ResNet-50, CIFAR variant.
#pragma once

#include <memory>

#include "master/core/random.h"
#include "master/models/named_sequential.h"

namespace tempo::models {

/// torchvision's ResNet with the usual CIFAR stem: a 3x3 stride-1 conv (no bias) + BN + ReLU and
/// no max-pool, then layer1..layer4 (64, 128, 256, 512 planes, stride 1, 2, 2, 2), global average
/// pool ("avgpool") and "fc". Paths as torchvision: "conv1", "bn1", "layer2.0.conv1",
/// "layer2.0.downsample.0", "fc". Initialisation as torchvision: Kaiming-normal (fan_out, ReLU)
/// convolutions, BN weight 1 / bias 0, PyTorch-default fc. Works for any image size >= 1
/// (28x28 gives 28-14-7-4 feature maps).
std::unique_ptr<NamedSequential> make_resnet18(int64_t in_channels, int64_t image_size,
                                               int64_t num_classes, Rng& rng);
/// As make_resnet18 with Bottleneck blocks (3, 4, 6, 3), 2048 features before "fc".
std::unique_ptr<NamedSequential> make_resnet50(int64_t in_channels, int64_t image_size,
                                               int64_t num_classes, Rng& rng);

}  // namespace tempo::models
