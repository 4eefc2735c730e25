// Builds a model by name.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "master/core/random.h"
#include "master/nn/module.h"

namespace tempo::models {

/// The names make_model() accepts: mlp, cnn, resnet18, resnet50, vit-tiny, vit-s4.
const std::vector<std::string>& model_names();

/// A freshly initialised model (weights drawn from `rng`) for square in_channels x image_size x
/// image_size inputs and num_classes outputs (logits [N, num_classes]). Throws
/// std::invalid_argument on an unknown name (the message lists the valid ones) or on arguments the
/// model cannot take (e.g. a ViT patch that does not divide image_size).
std::unique_ptr<nn::Module> make_model(const std::string& name, int64_t in_channels,
                                       int64_t image_size, int64_t num_classes, Rng& rng);

}  // namespace tempo::models
