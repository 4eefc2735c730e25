// Fashion-MNIST (Xiao et al. 2017): 28x28 grey images of 10 clothing classes, IDX files.
#pragma once

#include <string>

#include "master/data/dataset.h"

namespace tempo::data {

/// Where Debian-style installs put the four files.
inline constexpr char kFashionMnistDefaultDir[] = "/usr/share/datasets/fashion-mnist";
inline constexpr int kFashionMnistClasses = 10;

/// The customary statistics of the training split: mean 0.2860, std 0.3530.
Normalization fashion_mnist_normalization();

/// Loads train-{images-idx3,labels-idx1}-ubyte.gz (60000 samples) or t10k-* (10000 samples)
/// from `dir` (kFashionMnistDefaultDir when empty); an uncompressed file without ".gz" is used
/// when the .gz is missing. The result has 1 channel and the standard normalisation.
/// Throws FileError (a std::runtime_error) naming the file on any problem.
Dataset load_fashion_mnist(const std::string& dir, Split split);

/// Loads any pair of IDX files (MNIST-like): images [N, rows, cols] and N labels in
/// [0, num_classes). Throws FileError naming the file when the counts differ or a label is out
/// of range, besides the errors of read_idx_images/read_idx_labels.
Dataset load_idx_dataset(const std::string& images_path, const std::string& labels_path,
                         int num_classes, std::string name, Normalization normalization);

}  // namespace tempo::data
