// An in-memory image classification dataset, stored compactly as bytes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tempo::data {

/// Which part of a dataset to load.
enum class Split { kTrain, kTest };

/// "train" or "test"; throws std::invalid_argument otherwise.
Split parse_split(std::string_view name);
std::string_view split_name(Split split);

/// Per-channel statistics of pixel values scaled to [0, 1]; a pixel v of channel c is fed to the
/// model as (v / 255 - mean[c]) / std[c].
struct Normalization {
  std::vector<float> mean;
  std::vector<float> std;
};

/// N images as uint8 [N, C, H, W] (4x smaller than fp32: Fashion-MNIST takes 47 MB, CIFAR-10
/// 154 MB) with int32 labels in [0, num_classes). Conversion to normalised floats happens per
/// batch in DataLoader. The constructor validates everything, so a Dataset is always consistent.
class Dataset {
 public:
  Dataset() = default;
  /// Throws std::invalid_argument when sizes disagree, a label is out of range or a std is not
  /// positive.
  Dataset(std::string name, int channels, int height, int width, int num_classes,
          std::vector<uint8_t> images, std::vector<int32_t> labels, Normalization normalization);

  const std::string& name() const { return name_; }
  int64_t size() const { return static_cast<int64_t>(labels_.size()); }
  bool empty() const { return labels_.empty(); }
  int channels() const { return channels_; }
  int height() const { return height_; }
  int width() const { return width_; }
  /// Bytes per image: C * H * W.
  int64_t image_size() const { return int64_t{channels_} * height_ * width_; }
  int num_classes() const { return num_classes_; }

  /// The i-th image, [C, H, W] bytes.
  const uint8_t* image(int64_t i) const { return images_.data() + i * image_size(); }
  int32_t label(int64_t i) const { return labels_[static_cast<size_t>(i)]; }
  const std::vector<uint8_t>& images() const { return images_; }
  const std::vector<int32_t>& labels() const { return labels_; }

  const Normalization& normalization() const { return normalization_; }
  /// Replaces the statistics, e.g. by compute_normalization() of the training split.
  /// Throws std::invalid_argument unless there is one positive std per channel.
  void set_normalization(Normalization normalization);

 private:
  std::string name_;
  int channels_ = 0, height_ = 0, width_ = 0, num_classes_ = 0;
  std::vector<uint8_t> images_;
  std::vector<int32_t> labels_;
  Normalization normalization_;
};

/// Per-channel mean and (population) standard deviation of the dataset's pixels in [0, 1],
/// computed exactly with integer sums. A channel with zero variance gets std 1 so that
/// normalising never divides by zero. Throws std::invalid_argument on an empty dataset.
Normalization compute_normalization(const Dataset& dataset);

}  // namespace tempo::data
