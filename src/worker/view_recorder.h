// Records every tensor a worker receives (--record-view DIR), to measure what a worker learns.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>

#include "common/blinded_tensor.h"
#include "common/worker_protocol.h"

namespace tempo::worker {

/// Appends each received operand, with its request id, op, role, handle and shape, to the log
/// DIR/view.tvw in the format of docs/view-format.md (read it back with tempo::ViewReader).
/// This is what an honest-but-curious worker can keep; the master-side attack tools replay it.
/// Thread-safe: records from concurrent callers never interleave.
class ViewRecorder {
 public:
  /// Creates `dir` if needed and starts a new log there, replacing an earlier one (one view per
  /// run). Throws std::runtime_error if the log cannot be created.
  explicit ViewRecorder(const std::string& dir);
  ~ViewRecorder();
  ViewRecorder(const ViewRecorder&) = delete;
  ViewRecorder& operator=(const ViewRecorder&) = delete;

  /// Appends one record and flushes it to the OS, so a reader (or a crash) sees whole records.
  /// Throws std::runtime_error on a write error.
  void record(uint64_t request_id, protocol::Op op, char role, protocol::Handle handle,
              const BlindedTensor& tensor);

  /// While paused, record() keeps nothing (the master's --record-view-steps selects steps this
  /// way; a curious worker would keep everything). Takes effect for records that start after it.
  void set_paused(bool paused) { paused_.store(paused, std::memory_order_relaxed); }

  const std::string& file() const { return file_; }
  uint64_t records() const;
  uint64_t bytes_written() const;

 private:
  std::string file_;
  mutable std::mutex mu_;
  std::FILE* out_ = nullptr;
  bool failed_ = false;
  std::atomic<bool> paused_{false};
  uint64_t records_ = 0;
  uint64_t bytes_ = 0;
};

}  // namespace tempo::worker
