// A dataset's train and test splits in one sealed file (kind "dataset").
#pragma once

#include <filesystem>

#include "master/data/dataset.h"
#include "master/tee/primitives.h"
#include "master/tee/sealed_file.h"

namespace tempo::tee {

/// Both splits of a dataset, decrypted in memory.
struct SealedDataset {
  data::Dataset train;
  data::Dataset test;
};

/// Seals `train` and `test` (same name, geometry and classes) into `path`, atomically.
/// Header metadata (authenticated, not secret): dataset name, channels, height, width, classes,
/// sample counts and the normalization. Payload: train images (uint8), train labels (int32),
/// test images, test labels.
void write_sealed_dataset(const std::filesystem::path& path, const Key& key,
                          const data::Dataset& train, const data::Dataset& test,
                          uint32_t chunk_size = kDefaultChunkSize);

/// Decrypts and authenticates the whole file, then builds the datasets; nothing is returned (and
/// nothing written anywhere) unless every check passed. Throws SealedFileError.
SealedDataset read_sealed_dataset(const std::filesystem::path& path, const Key& key);

}  // namespace tempo::tee
