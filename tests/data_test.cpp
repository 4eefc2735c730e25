// Tests of the trusted-side data pipeline: loaders, errors, synthetic data, batching, shuffling,
// augmentation and normalisation.
#include <gtest/gtest.h>
#include <omp.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "master/data/augment.h"
#include "master/data/cifar10.h"
#include "master/data/data_loader.h"
#include "master/data/dataset.h"
#include "master/data/fashion_mnist.h"
#include "master/data/file_error.h"
#include "master/data/idx.h"
#include "master/data/load_dataset.h"
#include "master/data/synthetic.h"

namespace tempo::data {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

// A fresh directory per test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() /
            ("tempo_data_test_" + std::to_string(getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string str() const { return path_.string(); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

void write_raw(const std::string& path, const Bytes& bytes) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

void write_gz(const std::string& path, const Bytes& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr) << path;
  if (!bytes.empty()) {
    ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())),
              static_cast<int>(bytes.size()));
  }
  ASSERT_EQ(gzclose(f), Z_OK);
}

void put_be32(Bytes& b, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(v >> s));
}

// An IDX3 image file as written by the dataset's authors (big-endian header).
Bytes idx_images(uint32_t count, uint32_t rows, uint32_t cols, const Bytes& pixels,
                 uint32_t magic = 0x803) {
  Bytes b;
  put_be32(b, magic);
  put_be32(b, count);
  put_be32(b, rows);
  put_be32(b, cols);
  b.insert(b.end(), pixels.begin(), pixels.end());
  return b;
}

Bytes idx_labels(uint32_t count, const Bytes& labels) {
  Bytes b;
  put_be32(b, 0x801);
  put_be32(b, count);
  b.insert(b.end(), labels.begin(), labels.end());
  return b;
}

Bytes iota_bytes(size_t n, int start = 0) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>((start + static_cast<int>(i)) % 256);
  return b;
}

// Expects fn to throw a FileError naming `path` and containing `problem`.
void expect_file_error(const std::function<void()>& fn, const std::string& path,
                       const std::string& problem) {
  try {
    fn();
    ADD_FAILURE() << "no error; expected '" << problem << "' for " << path;
  } catch (const FileError& e) {
    const std::string what = e.what();
    EXPECT_EQ(e.path(), path) << what;
    EXPECT_NE(what.find(path), std::string::npos) << what;
    EXPECT_NE(what.find(problem), std::string::npos) << "expected '" << problem << "' in: " << what;
  }
}

// Five 3x4 grey images with pixel k of image i = 12 i + k, labels 0..4.
void write_small_fashion(const TempDir& dir, const std::string& prefix, bool gz) {
  const Bytes images = idx_images(5, 3, 4, iota_bytes(60));
  const Bytes labels = idx_labels(5, {0, 1, 2, 3, 9});
  if (gz) {
    write_gz(dir.file(prefix + "-images-idx3-ubyte.gz"), images);
    write_gz(dir.file(prefix + "-labels-idx1-ubyte.gz"), labels);
  } else {
    write_raw(dir.file(prefix + "-images-idx3-ubyte"), images);
    write_raw(dir.file(prefix + "-labels-idx1-ubyte"), labels);
  }
}

void expect_small_fashion(const Dataset& ds) {
  EXPECT_EQ(ds.name(), "fashion-mnist");
  ASSERT_EQ(ds.size(), 5);
  EXPECT_EQ(ds.channels(), 1);
  EXPECT_EQ(ds.height(), 3);
  EXPECT_EQ(ds.width(), 4);
  EXPECT_EQ(ds.num_classes(), 10);
  EXPECT_EQ(ds.images(), iota_bytes(60));
  EXPECT_EQ(ds.labels(), (std::vector<int32_t>{0, 1, 2, 3, 9}));
  EXPECT_EQ(ds.image(2)[5], 29);
  EXPECT_FLOAT_EQ(ds.normalization().mean[0], 0.2860f);
  EXPECT_FLOAT_EQ(ds.normalization().std[0], 0.3530f);
}

TEST(FashionMnist, ReadsGzipIdxFiles) {
  TempDir dir;
  write_small_fashion(dir, "train", /*gz=*/true);
  expect_small_fashion(load_fashion_mnist(dir.str(), Split::kTrain));
}

TEST(FashionMnist, FallsBackToUncompressedFilesWhenGzIsMissing) {
  TempDir dir;
  write_small_fashion(dir, "t10k", /*gz=*/false);
  expect_small_fashion(load_fashion_mnist(dir.str(), Split::kTest));
  expect_small_fashion(load_dataset("fashion-mnist", dir.str(), Split::kTest));
}

TEST(FashionMnist, MissingFileErrorNamesTheGzFile) {
  TempDir dir;
  expect_file_error([&] { load_fashion_mnist(dir.str(), Split::kTrain); },
                    dir.file("train-images-idx3-ubyte.gz"), "cannot open");
}

TEST(FashionMnist, TruncatedLabelsSayHowManyTheFileHolds) {
  TempDir dir;
  write_gz(dir.file("train-images-idx3-ubyte.gz"), idx_images(2, 2, 2, iota_bytes(8)));
  write_gz(dir.file("train-labels-idx1-ubyte.gz"), idx_labels(60000, Bytes(1234, 3)));
  expect_file_error([&] { load_fashion_mnist(dir.str(), Split::kTrain); },
                    dir.file("train-labels-idx1-ubyte.gz"),
                    "truncated: expected 60000 labels, file holds 1234");
}

TEST(FashionMnist, TruncatedImagesAreReported) {
  TempDir dir;
  const std::string path = dir.file("train-images-idx3-ubyte.gz");
  write_gz(path, idx_images(10, 2, 2, iota_bytes(30)));  // 7.5 of 10 images
  expect_file_error([&] { read_idx_images(path); }, path,
                    "truncated: expected 10 images, file holds 7");
}

Bytes read_all(const std::string& path) {
  Bytes b(fs::file_size(path));
  std::ifstream(path, std::ios::binary)
      .read(reinterpret_cast<char*>(b.data()), static_cast<std::streamsize>(b.size()));
  return b;
}

TEST(FashionMnist, CutGzipStreamIsReportedAsTruncated) {
  TempDir dir;
  const std::string full = dir.file("full.gz");
  write_gz(full, idx_images(50, 8, 8, iota_bytes(3200, 7)));
  Bytes compressed = read_all(full);
  compressed.resize(compressed.size() / 2);
  const std::string cut = dir.file("cut-images-idx3-ubyte.gz");
  write_raw(cut, compressed);
  expect_file_error([&] { read_idx_images(cut); }, cut,
                    "truncated: expected 50 images, file holds");
  expect_file_error([&] { read_idx_images(cut); }, cut, "the gzip stream is cut short");
}

TEST(FashionMnist, CorruptGzipDataIsReported) {
  TempDir dir;
  const std::string path = dir.file("train-labels-idx1-ubyte.gz");
  write_gz(path, idx_labels(100, iota_bytes(100)));
  Bytes compressed = read_all(path);
  compressed[compressed.size() - 6] ^= 0xff;  // inside the CRC-32 trailer
  write_raw(path, compressed);
  expect_file_error([&] { read_idx_labels(path); }, path, "corrupt gzip data");
}

TEST(FashionMnist, TruncatedHeaderIsReported) {
  TempDir dir;
  const std::string path = dir.file("t10k-labels-idx1-ubyte");
  write_raw(path, {0, 0, 8, 1, 0, 0});
  expect_file_error([&] { read_idx_labels(path); }, path, "truncated: header ends");
}

TEST(FashionMnist, BadMagicIsReported) {
  TempDir dir;
  const std::string path = dir.file("train-images-idx3-ubyte.gz");
  write_gz(path, idx_labels(4, {1, 2, 3, 4}));  // a label file where images belong
  expect_file_error([&] { read_idx_images(path); }, path, "bad magic 0x00000801");
  const std::string png = dir.file("x.gz");
  write_gz(png, {0x89, 'P', 'N', 'G', 0, 0, 0, 0});
  expect_file_error([&] { read_idx_labels(png); }, png, "bad magic 0x89504e47");
}

TEST(FashionMnist, CountMismatchNamesBothFiles) {
  TempDir dir;
  write_gz(dir.file("train-images-idx3-ubyte.gz"), idx_images(3, 2, 2, iota_bytes(12)));
  write_gz(dir.file("train-labels-idx1-ubyte.gz"), idx_labels(2, {1, 2}));
  expect_file_error(
      [&] { load_fashion_mnist(dir.str(), Split::kTrain); }, dir.file("train-labels-idx1-ubyte.gz"),
      "holds 2 labels but " + dir.file("train-images-idx3-ubyte.gz") + " holds 3 images");
}

TEST(FashionMnist, LabelOutOfRangeIsReported) {
  TempDir dir;
  write_gz(dir.file("train-images-idx3-ubyte.gz"), idx_images(3, 2, 2, iota_bytes(12)));
  write_gz(dir.file("train-labels-idx1-ubyte.gz"), idx_labels(3, {1, 10, 2}));
  expect_file_error([&] { load_fashion_mnist(dir.str(), Split::kTrain); },
                    dir.file("train-labels-idx1-ubyte.gz"), "label 10 of sample 1");
}

TEST(FashionMnist, TrailingDataIsReported) {
  TempDir dir;
  const std::string path = dir.file("labels");
  write_raw(path, idx_labels(2, {1, 2, 3}));
  expect_file_error([&] { read_idx_labels(path); }, path, "more data than its header declares");
}

// CIFAR-10 record r of a batch: label (seed + r) % 10, pixel k = (seed + r + k) % 256.
Bytes cifar_records(int count, int seed) {
  Bytes b;
  for (int r = 0; r < count; ++r) {
    b.push_back(static_cast<uint8_t>((seed + r) % 10));
    const Bytes px = iota_bytes(3072, seed + r);
    b.insert(b.end(), px.begin(), px.end());
  }
  return b;
}

TEST(Cifar10, ReadsBatchesFromTheNestedDirectory) {
  TempDir dir;
  const std::string nested = dir.file("cifar-10-batches-bin");
  const int counts[5] = {2, 1, 1, 1, 3};
  for (int b = 1; b <= 5; ++b)
    write_raw(nested + "/data_batch_" + std::to_string(b) + ".bin",
              cifar_records(counts[b - 1], 10 * b));
  const Dataset ds = load_cifar10(dir.str(), Split::kTrain);
  EXPECT_EQ(ds.name(), "cifar10");
  ASSERT_EQ(ds.size(), 8);
  EXPECT_EQ(ds.channels(), 3);
  EXPECT_EQ(ds.height(), 32);
  EXPECT_EQ(ds.width(), 32);
  EXPECT_EQ(ds.num_classes(), 10);
  // Sample 2 is record 0 of batch 2 (seed 20); sample 7 is record 2 of batch 5 (seed 52).
  EXPECT_EQ(ds.label(2), 0);
  EXPECT_EQ(ds.label(7), 2);
  EXPECT_EQ(Bytes(ds.image(7), ds.image(7) + 3072), iota_bytes(3072, 52));
  // Channel planes stay in place: green pixel (1, 2) is byte 1024 + 32 + 2 of the record.
  EXPECT_EQ(ds.image(2)[1024 + 32 + 2], (20 + 1024 + 34) % 256);
  EXPECT_FLOAT_EQ(ds.normalization().mean[2], 0.4465f);
  EXPECT_FLOAT_EQ(ds.normalization().std[0], 0.2470f);
}

TEST(Cifar10, ReadsTheTestBatchFromTheGivenDirectory) {
  TempDir dir;
  write_raw(dir.file("test_batch.bin"), cifar_records(4, 3));
  const Dataset ds = load_dataset("cifar10", dir.str(), Split::kTest);
  ASSERT_EQ(ds.size(), 4);
  EXPECT_EQ(ds.labels(), (std::vector<int32_t>{3, 4, 5, 6}));
  EXPECT_EQ(Bytes(ds.image(1), ds.image(1) + 3072), iota_bytes(3072, 4));
}

TEST(Cifar10, MalformedFilesNameTheFile) {
  TempDir dir;
  const std::string path = dir.file("test_batch.bin");
  expect_file_error([&] { load_cifar10(dir.str(), Split::kTest); }, path, "cannot open");
  write_raw(path, {});
  expect_file_error([&] { load_cifar10(dir.str(), Split::kTest); }, path, "empty file");
  const Bytes two = cifar_records(2, 0);
  write_raw(path, Bytes(two.begin(), two.begin() + 2 * kCifar10RecordBytes - 100));
  expect_file_error([&] { load_cifar10(dir.str(), Split::kTest); }, path, "wrong record size");
  Bytes bad_label = cifar_records(3, 0);
  bad_label[2 * kCifar10RecordBytes] = 10;
  write_raw(path, bad_label);
  expect_file_error([&] { load_cifar10(dir.str(), Split::kTest); }, path, "label 10 of record 2");
  // A missing later batch is named too.
  write_raw(dir.file("data_batch_1.bin"), cifar_records(1, 0));
  expect_file_error([&] { load_cifar10(dir.str(), Split::kTrain); }, dir.file("data_batch_2.bin"),
                    "cannot open");
}

TEST(LoadDataset, RejectsUnknownNamesAndCifarWithoutDirectory) {
  try {
    load_dataset("mnist", "", Split::kTrain);
    ADD_FAILURE() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("fashion-mnist, cifar10, synthetic"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(load_dataset("cifar10", "", Split::kTrain), std::invalid_argument);
  EXPECT_EQ(parse_split("test"), Split::kTest);
  EXPECT_THROW(parse_split("validation"), std::invalid_argument);
}

TEST(Dataset, ConstructorRejectsInconsistentData) {
  const Normalization norm{{0.5f}, {0.25f}};
  EXPECT_NO_THROW(Dataset("d", 1, 2, 2, 3, Bytes(8), {0, 2}, norm));
  EXPECT_THROW(Dataset("d", 1, 2, 2, 3, Bytes(7), {0, 2}, norm), std::invalid_argument);
  EXPECT_THROW(Dataset("d", 1, 2, 2, 3, Bytes(8), {0, 3}, norm), std::invalid_argument);
  EXPECT_THROW(Dataset("d", 1, 2, 2, 3, Bytes(8), {-1, 0}, norm), std::invalid_argument);
  EXPECT_THROW(Dataset("d", 1, 2, 2, 3, Bytes(8), {0, 1}, {{0.5f}, {0.0f}}), std::invalid_argument);
  EXPECT_THROW(Dataset("d", 2, 2, 1, 3, Bytes(8), {0, 1}, norm), std::invalid_argument);
}

TEST(Dataset, ComputeNormalizationGivesExactChannelStatistics) {
  // Channel 0 is half 0, half 255 (mean 0.5, std 0.5); channel 1 is constant 51 (mean 0.2,
  // zero variance -> std 1).
  const Bytes images = {0, 255, 51, 51, 255, 0, 51, 51};
  const Dataset ds("d", 2, 1, 2, 2, images, {0, 1}, {{0, 0}, {1, 1}});
  const Normalization n = compute_normalization(ds);
  EXPECT_FLOAT_EQ(n.mean[0], 0.5f);
  EXPECT_FLOAT_EQ(n.std[0], 0.5f);
  EXPECT_FLOAT_EQ(n.mean[1], 0.2f);
  EXPECT_FLOAT_EQ(n.std[1], 1.0f);
}

TEST(Synthetic, IsAPureFunctionOfSpecAndSplit) {
  SyntheticSpec spec;
  spec.train_size = 64;
  spec.test_size = 32;
  spec.seed = 7;
  const Dataset a = make_synthetic(spec, Split::kTrain);
  const Dataset b = load_dataset("synthetic", "", Split::kTrain, spec);
  EXPECT_EQ(a.images(), b.images());
  EXPECT_EQ(a.labels(), b.labels());
  EXPECT_EQ(a.size(), 64);
  EXPECT_EQ(a.channels(), 3);
  EXPECT_EQ(make_synthetic(spec, Split::kTest).size(), 32);
  omp_set_num_threads(1);
  const Dataset single = make_synthetic(spec, Split::kTrain);
  omp_set_num_threads(omp_get_num_procs());
  EXPECT_EQ(single.images(), a.images());
  spec.seed = 8;
  EXPECT_NE(make_synthetic(spec, Split::kTrain).images(), a.images());
  const Normalization n = compute_normalization(a);
  EXPECT_EQ(a.normalization().mean, n.mean);
  EXPECT_EQ(a.normalization().std, n.std);
}

TEST(Synthetic, ClassMeansLearnedOnTrainClassifyTheTestSplit) {
  SyntheticSpec spec{.train_size = 600,
                     .test_size = 200,
                     .channels = 2,
                     .height = 6,
                     .width = 5,
                     .num_classes = 7,
                     .seed = 3};
  const Dataset train = make_synthetic(spec, Split::kTrain);
  const Dataset test = make_synthetic(spec, Split::kTest);
  const int64_t d = train.image_size();
  std::vector<double> means(static_cast<size_t>(7 * d), 0.0);
  std::vector<int> counts(7, 0);
  for (int64_t i = 0; i < train.size(); ++i) {
    ++counts[static_cast<size_t>(train.label(i))];
    for (int64_t k = 0; k < d; ++k)
      means[static_cast<size_t>(train.label(i) * d + k)] += train.image(i)[k];
  }
  for (int c = 0; c < 7; ++c) {
    ASSERT_GT(counts[static_cast<size_t>(c)], 40) << "class " << c << " nearly absent";
    for (int64_t k = 0; k < d; ++k)
      means[static_cast<size_t>(c * d + k)] /= counts[static_cast<size_t>(c)];
  }
  int correct = 0;
  for (int64_t i = 0; i < test.size(); ++i) {
    int best = -1;
    double best_dist = 1e300;
    for (int c = 0; c < 7; ++c) {
      double dist = 0;
      for (int64_t k = 0; k < d; ++k) {
        const double diff = test.image(i)[k] - means[static_cast<size_t>(c * d + k)];
        dist += diff * diff;
      }
      if (dist < best_dist) best_dist = dist, best = c;
    }
    correct += best == test.label(i);
  }
  EXPECT_GT(correct, 180) << "nearest class mean: " << correct << " of 200";
}

// A dataset of n 1x2x3 images whose pixels encode the sample index: pixel k of image i = 6i+k.
std::shared_ptr<const Dataset> indexed_dataset(int n, int classes = 5) {
  std::vector<int32_t> labels(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) labels[static_cast<size_t>(i)] = i % classes;
  return std::make_shared<const Dataset>("indexed", 1, 2, 3, classes,
                                         iota_bytes(static_cast<size_t>(6 * n)), labels,
                                         Normalization{{0.0f}, {1.0f / 255.0f}});
}

TEST(DataLoader, EpochOrderIsAPermutationFixedBySeedAndEpoch) {
  const auto order = DataLoader::epoch_order(1000, 5, 3);
  std::vector<int64_t> sorted = order;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 1000; ++i) ASSERT_EQ(sorted[static_cast<size_t>(i)], i);
  EXPECT_EQ(order, DataLoader::epoch_order(1000, 5, 3));
  EXPECT_NE(order, DataLoader::epoch_order(1000, 5, 4));
  EXPECT_NE(order, DataLoader::epoch_order(1000, 6, 3));
  EXPECT_NE(DataLoader::epoch_order(1000, 5, 0), DataLoader::epoch_order(1000, 4, 1));
}

TEST(DataLoader, BatchesCoverEachSampleOnceWithImagesMatchingLabels) {
  const auto ds = indexed_dataset(23);
  DataLoader loader(ds, {.batch_size = 5, .seed = 9});
  EXPECT_EQ(loader.num_batches(), 5);
  for (uint64_t epoch : {0u, 1u}) {
    loader.start_epoch(epoch);
    std::vector<int64_t> seen;
    std::vector<int64_t> sizes;
    while (auto batch = loader.next()) {
      const int64_t b = batch->images.dim(0);
      sizes.push_back(b);
      ASSERT_EQ(batch->images.shape(), (Shape{b, 1, 2, 3}));
      for (int64_t j = 0; j < b; ++j) {
        const int64_t i = batch->indices[static_cast<size_t>(j)];
        seen.push_back(i);
        EXPECT_EQ(batch->labels[static_cast<size_t>(j)], i % 5);
        // Normalisation (v/255 - 0) / (1/255) recovers the byte, pixel 4 is 6i + 4.
        EXPECT_NEAR(batch->images[j * 6 + 4], static_cast<float>((6 * i + 4) % 256), 1e-3);
      }
    }
    EXPECT_EQ(sizes, (std::vector<int64_t>{5, 5, 5, 5, 3}));
    EXPECT_EQ(seen, DataLoader::epoch_order(23, 9, epoch));
  }
}

TEST(DataLoader, DropLastLimitAndNoShuffle) {
  const auto ds = indexed_dataset(23);
  DataLoader dropping(ds, {.batch_size = 5, .drop_last = true});
  EXPECT_EQ(dropping.num_batches(), 4);
  DataLoader limited(ds, {.batch_size = 4, .shuffle = false, .limit = 10});
  EXPECT_EQ(limited.num_samples(), 10);
  EXPECT_EQ(limited.num_batches(), 3);
  std::vector<int64_t> seen;
  while (auto batch = limited.next())
    seen.insert(seen.end(), batch->indices.begin(), batch->indices.end());
  EXPECT_EQ(seen, (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  DataLoader shuffled_limit(ds, {.batch_size = 100, .limit = 10, .seed = 1});
  const auto batch = shuffled_limit.next();
  std::vector<int64_t> idx = batch->indices;
  std::sort(idx.begin(), idx.end());
  EXPECT_EQ(idx, seen);
  EXPECT_FALSE(shuffled_limit.next());
}

TEST(DataLoader, NormalisesPerChannelWithTheDatasetStatistics) {
  const Bytes images = {0, 51, 255, 128, 10, 20, 30, 40};  // one 2x2x2 image
  auto ds = std::make_shared<const Dataset>("d", 2, 2, 2, 1, images, std::vector<int32_t>{0},
                                            Normalization{{0.2f, 0.5f}, {0.5f, 0.25f}});
  DataLoader loader(ds, {.batch_size = 1});
  const auto batch = loader.next();
  for (int k = 0; k < 8; ++k) {
    const float mean = k < 4 ? 0.2f : 0.5f, std = k < 4 ? 0.5f : 0.25f;
    EXPECT_NEAR(batch->images[k], (images[static_cast<size_t>(k)] / 255.0f - mean) / std, 1e-6)
        << "element " << k;
  }
  EXPECT_NEAR(batch->images[0], -0.4f, 1e-6);  // (0 - 0.2) / 0.5
  EXPECT_NEAR(batch->images[2], 1.6f, 1e-6);   // (1 - 0.2) / 0.5
}

TEST(DataLoader, PadsToSizeAndReplicatesGreyIntoThreeChannels) {
  // 28x28 -> 32x32: two black pixels each side.
  std::vector<uint8_t> px(28 * 28, 200);
  auto ds = std::make_shared<const Dataset>("d", 1, 28, 28, 1, px, std::vector<int32_t>{0},
                                            fashion_mnist_normalization());
  DataLoader loader(ds, {.batch_size = 1, .pad_to = 32, .channels = 3});
  EXPECT_EQ(loader.output_geometry().height, 32);
  const auto batch = loader.next();
  ASSERT_EQ(batch->images.shape(), (Shape{1, 3, 32, 32}));
  const float black = (0.0f - 0.2860f) / 0.3530f, grey = (200 / 255.0f - 0.2860f) / 0.3530f;
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 32; ++y)
      for (int x = 0; x < 32; ++x) {
        const bool inside = y >= 2 && y < 30 && x >= 2 && x < 30;
        ASSERT_NEAR(batch->images[(c * 32 + y) * 32 + x], inside ? grey : black, 1e-5)
            << c << "," << y << "," << x;
      }
  EXPECT_THROW(DataLoader(std::make_shared<const Dataset>(make_synthetic({}, Split::kTest)),
                          {.channels = 2}),
               std::invalid_argument);
  EXPECT_THROW(DataLoader(ds, {.batch_size = 0}), std::invalid_argument);
}

// Renders the 1x3x4 image with pixels 1..12 into a 3x4 output, in raw byte units.
std::vector<float> render_hand_made(const Placement& p) {
  const Bytes src = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  const std::vector<float> table = normalization_table({{0.0f}, {1.0f / 255.0f}});
  std::vector<float> out(12);
  render_image(src.data(), {1, 3, 4}, out.data(), {1, 3, 4}, p, table.data());
  for (float& v : out) v = std::round(v);
  return out;
}

TEST(Augment, FlipsAndCropsAHandMadeImage) {
  using V = std::vector<float>;
  EXPECT_EQ(render_hand_made({0, 0, false}), (V{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}));
  EXPECT_EQ(render_hand_made({0, 0, true}), (V{4, 3, 2, 1, 8, 7, 6, 5, 12, 11, 10, 9}));
  // Crop corner one down and two right in the padded image: content moves up 1, left 2.
  EXPECT_EQ(render_hand_made({-1, -2, false}), (V{7, 8, 0, 0, 11, 12, 0, 0, 0, 0, 0, 0}));
  // Content moves down 1 and right 1, then the crop is mirrored.
  EXPECT_EQ(render_hand_made({1, 1, true}), (V{0, 0, 0, 0, 3, 2, 1, 0, 7, 6, 5, 0}));
  EXPECT_EQ(render_hand_made({0, 4, false}), V(12, 0.0f));
  EXPECT_EQ(render_hand_made({3, 0, true}), V(12, 0.0f));
}

TEST(Augment, RandomPlacementStaysWithinThePadding) {
  Rng rng(1);
  const Placement base{2, 2, false};
  std::set<int> ys, xs;
  int flips = 0;
  for (int i = 0; i < 2000; ++i) {
    const Placement p = random_placement(base, {4, true}, rng);
    ys.insert(p.offset_y);
    xs.insert(p.offset_x);
    flips += p.flip;
  }
  EXPECT_EQ(ys, (std::set<int>{-2, -1, 0, 1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(xs, ys);
  EXPECT_GT(flips, 850);
  EXPECT_LT(flips, 1150);
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(random_placement(base, {4, false}, rng).flip);
  const Placement none = random_placement(base, {0, false}, rng);
  EXPECT_EQ(none.offset_y, 2);
  EXPECT_EQ(none.offset_x, 2);
}

TEST(DataLoader, AugmentedBatchesKeepShapeAndAreReproducible) {
  SyntheticSpec spec{.train_size = 40, .channels = 3, .height = 8, .width = 8};
  const auto ds = std::make_shared<const Dataset>(make_synthetic(spec, Split::kTrain));
  const LoaderOptions opts{.batch_size = 16, .seed = 4, .augmentation = {4, true}};
  DataLoader a(ds, opts), plain(ds, {.batch_size = 16, .seed = 4});
  const Batch first = a.batch(0);
  const Batch unaugmented = plain.batch(0);
  ASSERT_EQ(first.images.shape(), (Shape{16, 3, 8, 8}));
  EXPECT_EQ(first.indices, unaugmented.indices);
  int changed = 0;
  for (int64_t b = 0; b < 16; ++b) {
    bool differs = false;
    for (int64_t k = 0; k < 192; ++k)
      differs |= first.images[b * 192 + k] != unaugmented.images[b * 192 + k];
    changed += differs;
  }
  EXPECT_GE(changed, 10) << "augmentation left most images untouched";
  // Same (seed, epoch, batch) -> same pixels, whatever the thread count.
  omp_set_num_threads(1);
  const Batch again = DataLoader(ds, opts).batch(0);
  omp_set_num_threads(omp_get_num_procs());
  EXPECT_TRUE(std::equal(first.images.data(), first.images.data() + first.images.numel(),
                         again.images.data()));
  a.start_epoch(1);
  const Batch other_epoch = a.batch(0);
  EXPECT_NE(other_epoch.indices, first.indices);
}

TEST(DataLoader, ResumedStateReplaysTheSameBatches) {
  SyntheticSpec spec{.train_size = 50, .channels = 1, .height = 6, .width = 6};
  const auto ds = std::make_shared<const Dataset>(make_synthetic(spec, Split::kTrain));
  const LoaderOptions opts{.batch_size = 8, .seed = 11, .pad_to = 8, .augmentation = {2, true}};
  DataLoader original(ds, opts);
  original.start_epoch(3);
  original.next();
  original.next();
  const DataLoader::State saved = original.state();
  EXPECT_EQ(saved, (DataLoader::State{3, 2}));
  DataLoader resumed(ds, opts);
  resumed.set_state(saved);
  int batches = 0;
  while (auto expected = original.next()) {
    const auto got = resumed.next();
    ASSERT_TRUE(got);
    EXPECT_EQ(got->indices, expected->indices);
    EXPECT_EQ(got->labels, expected->labels);
    ASSERT_EQ(got->images.shape(), expected->images.shape());
    EXPECT_TRUE(std::equal(got->images.data(), got->images.data() + got->images.numel(),
                           expected->images.data()));
    ++batches;
  }
  EXPECT_EQ(batches, 5);
  EXPECT_FALSE(resumed.next());
  EXPECT_THROW(resumed.set_state({0, 8}), std::out_of_range);
}

TEST(FashionMnist, RealDatasetLoadsWithStandardSizesAndStatistics) {
  if (!fs::exists(std::string(kFashionMnistDefaultDir) + "/train-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "Fashion-MNIST not installed at " << kFashionMnistDefaultDir;
  const Dataset train = load_dataset("fashion-mnist", "", Split::kTrain);
  const Dataset test = load_fashion_mnist(kFashionMnistDefaultDir, Split::kTest);
  EXPECT_EQ(train.size(), 60000);
  EXPECT_EQ(test.size(), 10000);
  EXPECT_EQ(train.num_classes(), 10);
  EXPECT_EQ(train.height(), 28);
  EXPECT_EQ(train.width(), 28);
  std::vector<int> train_counts(10), test_counts(10);
  for (int32_t l : train.labels()) ++train_counts[static_cast<size_t>(l)];
  for (int32_t l : test.labels()) ++test_counts[static_cast<size_t>(l)];
  EXPECT_EQ(train_counts, std::vector<int>(10, 6000));
  EXPECT_EQ(test_counts, std::vector<int>(10, 1000));
  // The standard constants are the training split's statistics.
  const Normalization n = compute_normalization(train);
  EXPECT_NEAR(n.mean[0], 0.2860f, 5e-4);
  EXPECT_NEAR(n.std[0], 0.3530f, 5e-4);
}

}  // namespace
}  // namespace tempo::data
