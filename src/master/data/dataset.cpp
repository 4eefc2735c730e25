#include "master/data/dataset.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>

namespace tempo::data {

Split parse_split(std::string_view name) {
  if (name == "train") return Split::kTrain;
  if (name == "test") return Split::kTest;
  throw std::invalid_argument("unknown split '" + std::string(name) + "' (expected train or test)");
}

std::string_view split_name(Split split) { return split == Split::kTrain ? "train" : "test"; }

namespace {

void check_normalization(const Normalization& n, int channels, const std::string& name) {
  if (n.mean.size() != static_cast<size_t>(channels) ||
      n.std.size() != static_cast<size_t>(channels))
    throw std::invalid_argument("dataset " + name + ": normalisation needs " +
                                std::to_string(channels) + " means and stds, got " +
                                std::to_string(n.mean.size()) + " and " +
                                std::to_string(n.std.size()));
  for (int c = 0; c < channels; ++c) {
    const float s = n.std[static_cast<size_t>(c)];
    if (!(s > 0.0f) || !std::isfinite(s) || !std::isfinite(n.mean[static_cast<size_t>(c)]))
      throw std::invalid_argument("dataset " + name + ": channel " + std::to_string(c) +
                                  " has std " + std::to_string(s) + " (must be finite and > 0)");
  }
}

}  // namespace

Dataset::Dataset(std::string name, int channels, int height, int width, int num_classes,
                 std::vector<uint8_t> images, std::vector<int32_t> labels,
                 Normalization normalization)
    : name_(std::move(name)),
      channels_(channels),
      height_(height),
      width_(width),
      num_classes_(num_classes),
      images_(std::move(images)),
      labels_(std::move(labels)) {
  if (channels <= 0 || height <= 0 || width <= 0 || num_classes <= 0)
    throw std::invalid_argument("dataset " + name_ + ": channels, height, width and classes " +
                                "must be positive, got " + std::to_string(channels) + ", " +
                                std::to_string(height) + ", " + std::to_string(width) + ", " +
                                std::to_string(num_classes));
  if (images_.size() != labels_.size() * static_cast<size_t>(image_size()))
    throw std::invalid_argument("dataset " + name_ + ": " + std::to_string(images_.size()) +
                                " image bytes for " + std::to_string(labels_.size()) +
                                " labels of " + std::to_string(image_size()) + " bytes each");
  for (size_t i = 0; i < labels_.size(); ++i)
    if (labels_[i] < 0 || labels_[i] >= num_classes)
      throw std::invalid_argument("dataset " + name_ + ": label " + std::to_string(labels_[i]) +
                                  " of sample " + std::to_string(i) + " is outside [0, " +
                                  std::to_string(num_classes) + ")");
  set_normalization(std::move(normalization));
}

void Dataset::set_normalization(Normalization normalization) {
  check_normalization(normalization, channels_, name_);
  normalization_ = std::move(normalization);
}

Normalization compute_normalization(const Dataset& dataset) {
  if (dataset.empty())
    throw std::invalid_argument("compute_normalization: dataset " + dataset.name() + " is empty");
  const int channels = dataset.channels();
  const int64_t plane = int64_t{dataset.height()} * dataset.width();
  const int64_t n = dataset.size();
  Normalization out;
  for (int c = 0; c < channels; ++c) {
    // Integer sums are exact (255^2 * 2^40 pixels would still fit), so the result does not
    // depend on the thread count.
    uint64_t sum = 0, sum_sq = 0;
#pragma omp parallel for reduction(+ : sum, sum_sq) schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      const uint8_t* p = dataset.image(i) + c * plane;
      uint64_t s = 0, s2 = 0;
      for (int64_t k = 0; k < plane; ++k) {
        s += p[k];
        s2 += uint32_t{p[k]} * p[k];
      }
      sum += s;
      sum_sq += s2;
    }
    const double count = static_cast<double>(n) * static_cast<double>(plane);
    const double mean = static_cast<double>(sum) / count;
    const double var = std::max(0.0, static_cast<double>(sum_sq) / count - mean * mean);
    const double std = std::sqrt(var) / 255.0;
    out.mean.push_back(static_cast<float>(mean / 255.0));
    out.std.push_back(std > 0.0 ? static_cast<float>(std) : 1.0f);
  }
  return out;
}

}  // namespace tempo::data
