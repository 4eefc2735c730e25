#include "master/data/cifar10.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <utility>

#include "master/data/file_error.h"

namespace tempo::data {
namespace {

constexpr int64_t kImageBytes = kCifar10RecordBytes - 1;

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

}  // namespace

Normalization cifar10_normalization() {
  return {{0.4914f, 0.4822f, 0.4465f}, {0.2470f, 0.2435f, 0.2616f}};
}

std::string resolve_cifar10_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(dir + "/data_batch_1.bin", ec) || fs::exists(dir + "/test_batch.bin", ec))
    return dir;
  const std::string nested = dir + "/cifar-10-batches-bin";
  if (fs::is_directory(nested, ec)) return nested;
  return dir;
}

void read_cifar10_batch(const std::string& path, std::vector<uint8_t>& images,
                        std::vector<int32_t>& labels) {
  errno = 0;
  std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
  if (!file) throw FileError(path, std::string("cannot open: ") + std::strerror(errno));
  std::error_code ec;
  const auto size = static_cast<int64_t>(std::filesystem::file_size(path, ec));
  if (ec) throw FileError(path, "cannot read its size: " + ec.message());
  if (size == 0) throw FileError(path, "empty file (expected records of 3073 bytes)");
  if (size % kCifar10RecordBytes != 0)
    throw FileError(path, "wrong record size: " + std::to_string(size) +
                              " bytes is not a whole number of 3073-byte records (1 label + "
                              "3x32x32 pixels); truncated or not the binary version?");
  const int64_t records = size / kCifar10RecordBytes;
  // The record layout is already [C, H, W]: read each image straight to its place.
  const size_t image_base = images.size();
  images.resize(image_base + static_cast<size_t>(records * kImageBytes));
  labels.reserve(labels.size() + static_cast<size_t>(records));
  for (int64_t r = 0; r < records; ++r) {
    uint8_t label = 0;
    uint8_t* image = images.data() + image_base + r * kImageBytes;
    if (std::fread(&label, 1, 1, file.get()) != 1 ||
        std::fread(image, 1, kImageBytes, file.get()) != static_cast<size_t>(kImageBytes))
      throw FileError(path, "truncated: expected " + std::to_string(records) +
                                " records, read failed at record " + std::to_string(r));
    if (label >= kCifar10Classes)
      throw FileError(path, "label " + std::to_string(label) + " of record " + std::to_string(r) +
                                " is outside [0, 10)");
    labels.push_back(label);
  }
}

Dataset load_cifar10(const std::string& dir, Split split) {
  const std::string base = resolve_cifar10_dir(dir);
  std::vector<uint8_t> images;
  std::vector<int32_t> labels;
  if (split == Split::kTrain) {
    images.reserve(50000 * kImageBytes);
    labels.reserve(50000);
    for (int b = 1; b <= 5; ++b)
      read_cifar10_batch(base + "/data_batch_" + std::to_string(b) + ".bin", images, labels);
  } else {
    read_cifar10_batch(base + "/test_batch.bin", images, labels);
  }
  return Dataset("cifar10", 3, 32, 32, kCifar10Classes, std::move(images), std::move(labels),
                 cifar10_normalization());
}

}  // namespace tempo::data
