// Batches of a Dataset as normalised float tensors, shuffled reproducibly per epoch.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "master/core/tensor.h"
#include "master/data/augment.h"
#include "master/data/dataset.h"

namespace tempo::data {

/// How a DataLoader batches and transforms its dataset.
struct LoaderOptions {
  int64_t batch_size = 64;
  /// Shuffle every epoch; the order is a pure function of (seed, epoch).
  bool shuffle = true;
  /// Drop the last batch when it would be smaller than batch_size.
  bool drop_last = false;
  /// Use only the first `limit` samples of the dataset (0: all).
  int64_t limit = 0;
  /// Seeds the shuffling and the augmentation.
  uint64_t seed = 0;
  /// Output height and width at least this, by zero (black) padding around the centred image
  /// (0 or less than the image: the dataset's size). 32 turns 28x28 Fashion-MNIST into 32x32.
  int pad_to = 0;
  /// Output channels (0: the dataset's). 3 on a 1-channel dataset replicates grey into RGB.
  int channels = 0;
  /// Random crop / flip, for training.
  Augmentation augmentation{};
};

/// One batch: images [B, C, H, W] normalised per channel, and their labels.
struct Batch {
  Tensor images;
  std::vector<int32_t> labels;
  /// Dataset indices of the samples, in batch order.
  std::vector<int64_t> indices;
};

/// Iterates a dataset in batches:
///   loader.start_epoch(e);
///   while (auto batch = loader.next()) { ... }
/// Everything random is a pure function of (seed, epoch, batch index): the sample order of an
/// epoch and the augmentation of each batch do not depend on what was loaded before, so a run
/// resumed from state() sees exactly the batches of an uninterrupted run.
/// Conversion (gather, placement, augmentation, normalisation, channel replication) is one pass
/// per image, in parallel over the images of the batch (OpenMP).
class DataLoader {
 public:
  /// Where the loader is: the epoch and the next batch of it. Save it in checkpoints.
  struct State {
    uint64_t epoch = 0;
    int64_t next_batch = 0;
    bool operator==(const State&) const = default;
  };

  /// Throws std::invalid_argument on a null dataset, a non-positive batch size, a negative
  /// limit, pad_to, channel count or crop padding, or a channel count that is neither the
  /// dataset's nor a replication of a single channel. Starts at epoch 0.
  DataLoader(std::shared_ptr<const Dataset> dataset, const LoaderOptions& options);

  const Dataset& dataset() const { return *dataset_; }
  const LoaderOptions& options() const { return options_; }
  /// Samples per epoch (the dataset size, capped by limit).
  int64_t num_samples() const { return num_samples_; }
  /// Batches per epoch, given drop_last.
  int64_t num_batches() const;
  /// Geometry of one output image.
  const ImageGeometry& output_geometry() const { return out_; }

  /// Starts epoch `epoch` from its first batch.
  void start_epoch(uint64_t epoch);
  /// The next batch of the current epoch, or nothing at its end.
  std::optional<Batch> next();
  /// Batch i of the current epoch (0 <= i < num_batches()), without moving the cursor.
  /// Throws std::out_of_range for other i.
  Batch batch(int64_t i) const;

  State state() const { return {epoch_, next_batch_}; }
  /// Resumes at `state` (its epoch order is recomputed). Throws std::out_of_range when
  /// state.next_batch is outside [0, num_batches()].
  void set_state(const State& state);

  /// The sample order of an epoch: a permutation of [0, n) that depends only on (seed, epoch)
  /// (Fisher-Yates driven by a tempo::Rng seeded from them).
  static std::vector<int64_t> epoch_order(int64_t n, uint64_t seed, uint64_t epoch);

 private:
  std::shared_ptr<const Dataset> dataset_;
  LoaderOptions options_;
  int64_t num_samples_ = 0;
  ImageGeometry in_, out_;
  Placement base_placement_;
  std::vector<float> table_;  // normalization_table() of the dataset
  uint64_t epoch_ = 0;
  int64_t next_batch_ = 0;
  std::vector<int64_t> order_;
};

}  // namespace tempo::data
