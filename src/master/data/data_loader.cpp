#include "master/data/data_loader.h"

#include <algorithm>
#include <numeric>
#include <stdexcept>
#include <string>
#include <utility>

#include "master/core/random.h"
#include "master/data/seeding.h"

namespace tempo::data {
namespace {

// Stream tags for derive_seed, so shuffling and augmentation never share a stream.
constexpr uint64_t kShuffleStream = 0x73687566666c65ULL;  // "shuffle"
constexpr uint64_t kAugmentStream = 0x6175676d656e74ULL;  // "augment"

}  // namespace

DataLoader::DataLoader(std::shared_ptr<const Dataset> dataset, const LoaderOptions& options)
    : dataset_(std::move(dataset)), options_(options) {
  if (!dataset_) throw std::invalid_argument("DataLoader: no dataset");
  if (options_.batch_size <= 0)
    throw std::invalid_argument("DataLoader: batch size must be positive, got " +
                                std::to_string(options_.batch_size));
  if (options_.limit < 0 || options_.pad_to < 0 || options_.channels < 0 ||
      options_.augmentation.crop_padding < 0)
    throw std::invalid_argument(
        "DataLoader: limit, pad_to, channels and crop padding must not "
        "be negative");
  num_samples_ = options_.limit > 0 ? std::min(options_.limit, dataset_->size()) : dataset_->size();
  in_ = {dataset_->channels(), dataset_->height(), dataset_->width()};
  out_ = {options_.channels > 0 ? options_.channels : in_.channels,
          std::max(in_.height, options_.pad_to), std::max(in_.width, options_.pad_to)};
  if (out_.channels != in_.channels && in_.channels != 1)
    throw std::invalid_argument("DataLoader: cannot turn the " + std::to_string(in_.channels) +
                                " channels of " + dataset_->name() + " into " +
                                std::to_string(out_.channels));
  base_placement_ = centered_placement(in_, out_);
  table_ = normalization_table(dataset_->normalization());
  start_epoch(0);
}

int64_t DataLoader::num_batches() const {
  return options_.drop_last ? num_samples_ / options_.batch_size
                            : (num_samples_ + options_.batch_size - 1) / options_.batch_size;
}

std::vector<int64_t> DataLoader::epoch_order(int64_t n, uint64_t seed, uint64_t epoch) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t{0});
  Rng rng(derive_seed(seed, kShuffleStream, epoch));
  for (int64_t i = n - 1; i > 0; --i)
    std::swap(order[static_cast<size_t>(i)],
              order[static_cast<size_t>(rng.below(static_cast<uint64_t>(i) + 1))]);
  return order;
}

void DataLoader::start_epoch(uint64_t epoch) {
  epoch_ = epoch;
  next_batch_ = 0;
  if (options_.shuffle) {
    order_ = epoch_order(num_samples_, options_.seed, epoch);
  } else if (static_cast<int64_t>(order_.size()) != num_samples_) {
    order_.resize(static_cast<size_t>(num_samples_));
    std::iota(order_.begin(), order_.end(), int64_t{0});
  }
}

void DataLoader::set_state(const State& state) {
  if (state.next_batch < 0 || state.next_batch > num_batches())
    throw std::out_of_range("DataLoader: batch " + std::to_string(state.next_batch) +
                            " outside an epoch of " + std::to_string(num_batches()) + " batches");
  start_epoch(state.epoch);
  next_batch_ = state.next_batch;
}

std::optional<Batch> DataLoader::next() {
  if (next_batch_ >= num_batches()) return std::nullopt;
  return batch(next_batch_++);
}

Batch DataLoader::batch(int64_t i) const {
  if (i < 0 || i >= num_batches())
    throw std::out_of_range("DataLoader: batch " + std::to_string(i) + " outside an epoch of " +
                            std::to_string(num_batches()) + " batches");
  const int64_t begin = i * options_.batch_size;
  const int64_t size = std::min(options_.batch_size, num_samples_ - begin);
  Batch batch;
  batch.indices.assign(order_.begin() + begin, order_.begin() + begin + size);
  batch.labels.resize(static_cast<size_t>(size));
  // Draw every placement up front, in batch order, so the parallel loop below is deterministic.
  std::vector<Placement> placements(static_cast<size_t>(size), base_placement_);
  if (options_.augmentation.enabled()) {
    Rng rng(
        derive_seed(derive_seed(options_.seed, kAugmentStream, epoch_), static_cast<uint64_t>(i)));
    for (Placement& p : placements)
      p = random_placement(base_placement_, options_.augmentation, rng);
  }
  batch.images = Tensor(Shape{size, out_.channels, out_.height, out_.width});
  float* dst = batch.images.data();
  const int64_t out_size = out_.size();
  const Dataset& ds = *dataset_;
  // render_image cannot throw here: the constructor checked the channel counts.
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < size; ++b) {
    const int64_t index = batch.indices[static_cast<size_t>(b)];
    batch.labels[static_cast<size_t>(b)] = ds.label(index);
    render_image(ds.image(index), in_, dst + b * out_size, out_, placements[static_cast<size_t>(b)],
                 table_.data());
  }
  return batch;
}

}  // namespace tempo::data
