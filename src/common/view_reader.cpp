#include "common/view_reader.h"

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <stdexcept>

#include "common/view_format.h"

namespace tempo {

namespace {

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

File open_or_throw(const std::string& path) {
  File f(std::fopen(path.c_str(), "rb"));
  if (!f) throw std::runtime_error("view: cannot open " + path + ": " + std::strerror(errno));
  return f;
}

[[noreturn]] void corrupt(const std::string& file, uint64_t offset, const std::string& why) {
  throw std::runtime_error("view: " + file + " is corrupt at byte " + std::to_string(offset) +
                           ": " + why);
}

}  // namespace

ViewReader::ViewReader(const std::string& path) {
  file_ = std::filesystem::is_directory(path)
              ? (std::filesystem::path(path) / view::kFileName).string()
              : path;
  File f = open_or_throw(file_);
  const uint64_t file_size = std::filesystem::file_size(file_);

  view::FileHeader fh;
  if (std::fread(&fh, sizeof fh, 1, f.get()) != 1 ||
      std::memcmp(fh.magic, view::kFileMagic, sizeof fh.magic) != 0)
    throw std::runtime_error("view: " + file_ + " is not a Tempo view log (bad magic)");
  if (fh.version != view::kFormatVersion)
    throw std::runtime_error("view: " + file_ + " has format version " +
                             std::to_string(fh.version) + ", this reader knows version " +
                             std::to_string(view::kFormatVersion));

  uint64_t offset = sizeof fh;
  while (offset < file_size) {
    if (file_size - offset < sizeof(view::RecordHeader)) {
      truncated_ = true;
      break;
    }
    view::RecordHeader h;
    if (std::fseek(f.get(), static_cast<long>(offset), SEEK_SET) != 0 ||
        std::fread(&h, sizeof h, 1, f.get()) != 1)
      corrupt(file_, offset, "cannot read the record header");
    if (std::memcmp(h.magic, view::kRecordMagic, sizeof h.magic) != 0)
      corrupt(file_, offset, "bad record magic");
    if (h.rank > view::kMaxRank) corrupt(file_, offset, "rank " + std::to_string(h.rank));
    if (h.role != 'a' && h.role != 'b') corrupt(file_, offset, "role is neither 'a' nor 'b'");
    ViewEntry e;
    e.request_id = h.request_id;
    e.op = static_cast<protocol::Op>(h.op);
    e.role = h.role;
    e.handle = h.handle;
    uint64_t bytes = sizeof(float);
    for (int i = 0; i < h.rank; ++i) {
      if (h.dims[i] < 0) corrupt(file_, offset, "negative dimension");
      if (__builtin_mul_overflow(bytes, static_cast<uint64_t>(h.dims[i]), &bytes))
        corrupt(file_, offset, "size overflows");
      e.shape.push_back(h.dims[i]);
    }
    if (bytes != h.payload_bytes)
      corrupt(file_, offset,
              "payload size " + std::to_string(h.payload_bytes) + " does not match shape " +
                  e.shape.to_string());
    e.payload_offset = offset + sizeof h;
    if (file_size - e.payload_offset < h.payload_bytes) {
      truncated_ = true;
      break;
    }
    entries_.push_back(e);
    offset = e.payload_offset + h.payload_bytes;
  }
}

BlindedTensor ViewReader::load(size_t i) const {
  if (i >= entries_.size())
    throw std::out_of_range("view: entry " + std::to_string(i) + " of " +
                            std::to_string(entries_.size()));
  const ViewEntry& e = entries_[i];
  BlindedTensor t = BlindedTensor::allocate(e.shape);
  File f = open_or_throw(file_);
  const size_t n = static_cast<size_t>(t.numel());
  if (std::fseek(f.get(), static_cast<long>(e.payload_offset), SEEK_SET) != 0 ||
      std::fread(t.mutable_data(), sizeof(float), n, f.get()) != n)
    throw std::runtime_error("view: cannot read entry " + std::to_string(i) + " of " + file_);
  return t;
}

}  // namespace tempo
