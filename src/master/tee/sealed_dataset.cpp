#include "master/tee/sealed_dataset.h"

#include <stdexcept>

namespace tempo::tee {

namespace {
uint64_t split_bytes(const data::Dataset& d) {
  return static_cast<uint64_t>(d.images().size()) + uint64_t(d.labels().size()) * 4;
}
}  // namespace

void write_sealed_dataset(const std::filesystem::path& path, const Key& key,
                          const data::Dataset& train, const data::Dataset& test,
                          uint32_t chunk_size) {
  if (train.name() != test.name() || train.channels() != test.channels() ||
      train.height() != test.height() || train.width() != test.width() ||
      train.num_classes() != test.num_classes())
    throw std::invalid_argument("seal: the train and test splits differ in name or geometry");
  const nlohmann::json meta = {
      {"dataset", train.name()},
      {"channels", train.channels()},
      {"height", train.height()},
      {"width", train.width()},
      {"num_classes", train.num_classes()},
      {"train_count", train.size()},
      {"test_count", test.size()},
      {"normalization",
       {{"mean", train.normalization().mean}, {"std", train.normalization().std}}}};
  SealedWriter w(path, key, SealedKind::kDataset, split_bytes(train) + split_bytes(test), meta, 0,
                 chunk_size);
  for (const data::Dataset* d : {&train, &test}) {
    w.write(d->images().data(), d->images().size());
    w.write(d->labels().data(), d->labels().size() * sizeof(int32_t));
  }
  w.commit();
}

SealedDataset read_sealed_dataset(const std::filesystem::path& path, const Key& key) {
  SealedReader r(path, key, SealedKind::kDataset);
  const auto& m = r.header().meta;
  std::string name;
  int channels = 0, height = 0, width = 0, classes = 0;
  int64_t counts[2] = {0, 0};
  data::Normalization norm;
  try {
    name = m.at("dataset").get<std::string>();
    channels = m.at("channels").get<int>();
    height = m.at("height").get<int>();
    width = m.at("width").get<int>();
    classes = m.at("num_classes").get<int>();
    counts[0] = m.at("train_count").get<int64_t>();
    counts[1] = m.at("test_count").get<int64_t>();
    norm.mean = m.at("normalization").at("mean").get<std::vector<float>>();
    norm.std = m.at("normalization").at("std").get<std::vector<float>>();
  } catch (const nlohmann::json::exception& e) {
    r.fail("header", std::string("dataset metadata: ") + e.what());
  }
  if (channels <= 0 || height <= 0 || width <= 0 || counts[0] < 0 || counts[1] < 0)
    r.fail("header", "dataset metadata has a non-positive size");
  const uint64_t image = uint64_t(channels) * uint64_t(height) * uint64_t(width);
  uint64_t need = 0;
  for (int64_t c : counts) need += uint64_t(c) * (image + 4);
  if (need != r.header().payload_bytes)
    r.fail("header", "dataset metadata does not match the payload length");

  std::vector<uint8_t> images[2];
  std::vector<int32_t> labels[2];
  for (int s = 0; s < 2; ++s) {
    images[s].resize(uint64_t(counts[s]) * image);
    labels[s].resize(static_cast<size_t>(counts[s]));
    r.read(images[s].data(), images[s].size());
    r.read(labels[s].data(), labels[s].size() * sizeof(int32_t));
  }
  r.finish();
  try {
    return {data::Dataset(name, channels, height, width, classes, std::move(images[0]),
                          std::move(labels[0]), norm),
            data::Dataset(name, channels, height, width, classes, std::move(images[1]),
                          std::move(labels[1]), norm)};
  } catch (const std::invalid_argument& e) {
    r.fail("content", e.what());
  }
}

}  // namespace tempo::tee
