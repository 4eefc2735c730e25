// CIFAR-10 (Krizhevsky 2009), binary version: 32x32 RGB images of 10 classes.
#pragma once

#include <string>

#include "master/data/dataset.h"

namespace tempo::data {

inline constexpr int kCifar10Classes = 10;
/// One record: 1 label byte, then the red, green and blue 32x32 planes.
inline constexpr int64_t kCifar10RecordBytes = 1 + 3 * 32 * 32;

/// The customary statistics of the training split: mean (0.4914, 0.4822, 0.4465),
/// std (0.2470, 0.2435, 0.2616).
Normalization cifar10_normalization();

/// The directory that holds the batch files: `dir` itself when it has data_batch_1.bin or
/// test_batch.bin, else `dir`/cifar-10-batches-bin when that exists, else `dir`.
std::string resolve_cifar10_dir(const std::string& dir);

/// Loads data_batch_1.bin .. data_batch_5.bin (train, 50000 samples) or test_batch.bin (test,
/// 10000) from `dir` or `dir`/cifar-10-batches-bin. Throws FileError (a std::runtime_error)
/// naming the file when it is missing, empty, not a whole number of records, or holds a label
/// outside [0, 10).
Dataset load_cifar10(const std::string& dir, Split split);

/// Reads the records of one batch file and appends them to images and labels. Errors as above.
void read_cifar10_batch(const std::string& path, std::vector<uint8_t>& images,
                        std::vector<int32_t>& labels);

}  // namespace tempo::data
