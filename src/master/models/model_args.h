// Checks shared by the model builders.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace tempo::models {

/// Throws std::invalid_argument naming `model` unless the input geometry and class count are
/// positive. Every model takes the same three arguments: channels, square image size, classes.
inline void check_model_args(const std::string& model, int64_t in_channels, int64_t image_size,
                             int64_t num_classes) {
  if (in_channels <= 0 || image_size <= 0 || num_classes <= 0)
    throw std::invalid_argument(model + ": in_channels (" + std::to_string(in_channels) +
                                "), image_size (" + std::to_string(image_size) +
                                ") and num_classes (" + std::to_string(num_classes) +
                                ") must be positive");
}

}  // namespace tempo::models
