#include "worker/view_recorder.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "common/view_format.h"

namespace tempo::worker {

namespace {

void write_or_throw(std::FILE* f, const void* p, size_t n, const std::string& file) {
  if (n > 0 && std::fwrite(p, 1, n, f) != n)
    throw std::runtime_error("view recorder: write to " + file +
                             " failed: " + std::strerror(errno));
}

}  // namespace

ViewRecorder::ViewRecorder(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw std::runtime_error("view recorder: cannot create " + dir + ": " + ec.message());
  file_ = (std::filesystem::path(dir) / view::kFileName).string();
  out_ = std::fopen(file_.c_str(), "wb");
  if (!out_)
    throw std::runtime_error("view recorder: cannot create " + file_ + ": " + std::strerror(errno));
  view::FileHeader h{};
  std::memcpy(h.magic, view::kFileMagic, sizeof h.magic);
  h.version = view::kFormatVersion;
  if (std::fwrite(&h, sizeof h, 1, out_) != 1 || std::fflush(out_) != 0) {
    const std::string why = std::strerror(errno);
    std::fclose(out_);
    throw std::runtime_error("view recorder: cannot write " + file_ + ": " + why);
  }
  bytes_ = sizeof h;
}

ViewRecorder::~ViewRecorder() {
  if (out_) std::fclose(out_);
}

void ViewRecorder::record(uint64_t request_id, protocol::Op op, char role, protocol::Handle handle,
                          const BlindedTensor& tensor) {
  if (paused_.load(std::memory_order_relaxed)) return;
  view::RecordHeader h{};
  std::memcpy(h.magic, view::kRecordMagic, sizeof h.magic);
  h.op = static_cast<uint32_t>(op);
  h.request_id = request_id;
  h.handle = handle;
  h.role = role;
  h.rank = static_cast<uint8_t>(tensor.rank());
  for (int i = 0; i < tensor.rank(); ++i) h.dims[i] = tensor.dim(i);
  h.payload_bytes = static_cast<uint64_t>(tensor.bytes());

  std::lock_guard lock(mu_);
  if (failed_)
    throw std::runtime_error("view recorder: " + file_ + " is disabled after a write error");
  // A failed write may leave half a record; later records would then be unreadable, so the
  // recorder stops (the reader reports the half record as truncated).
  failed_ = true;
  write_or_throw(out_, &h, sizeof h, file_);
  write_or_throw(out_, tensor.data(), h.payload_bytes, file_);
  if (std::fflush(out_) != 0)
    throw std::runtime_error("view recorder: write to " + file_ +
                             " failed: " + std::strerror(errno));
  failed_ = false;
  ++records_;
  bytes_ += sizeof h + h.payload_bytes;
}

uint64_t ViewRecorder::records() const {
  std::lock_guard lock(mu_);
  return records_;
}

uint64_t ViewRecorder::bytes_written() const {
  std::lock_guard lock(mu_);
  return bytes_;
}

}  // namespace tempo::worker
