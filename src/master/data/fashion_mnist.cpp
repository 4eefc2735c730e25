#include "master/data/fashion_mnist.h"

#include <utility>

#include "master/data/file_error.h"
#include "master/data/idx.h"

namespace tempo::data {

Normalization fashion_mnist_normalization() { return {{0.2860f}, {0.3530f}}; }

Dataset load_idx_dataset(const std::string& images_path, const std::string& labels_path,
                         int num_classes, std::string name, Normalization normalization) {
  IdxImages images = read_idx_images(images_path);
  const std::vector<uint8_t> raw_labels = read_idx_labels(labels_path);
  if (static_cast<int64_t>(raw_labels.size()) != images.count)
    throw FileError(labels_path, "holds " + std::to_string(raw_labels.size()) + " labels but " +
                                     images_path + " holds " + std::to_string(images.count) +
                                     " images");
  std::vector<int32_t> labels(raw_labels.size());
  for (size_t i = 0; i < raw_labels.size(); ++i) {
    if (raw_labels[i] >= num_classes)
      throw FileError(labels_path, "label " + std::to_string(raw_labels[i]) + " of sample " +
                                       std::to_string(i) + " is outside [0, " +
                                       std::to_string(num_classes) + ")");
    labels[i] = raw_labels[i];
  }
  return Dataset(std::move(name), 1, images.rows, images.cols, num_classes,
                 std::move(images.pixels), std::move(labels), std::move(normalization));
}

Dataset load_fashion_mnist(const std::string& dir, Split split) {
  const std::string base = dir.empty() ? std::string(kFashionMnistDefaultDir) : dir;
  const std::string prefix = base + "/" + (split == Split::kTrain ? "train" : "t10k");
  return load_idx_dataset(resolve_gz_or_raw(prefix + "-images-idx3-ubyte.gz"),
                          resolve_gz_or_raw(prefix + "-labels-idx1-ubyte.gz"), kFashionMnistClasses,
                          "fashion-mnist", fashion_mnist_normalization());
}

}  // namespace tempo::data
