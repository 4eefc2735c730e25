// 64-byte aligned float storage, shared by the trusted master and the untrusted workers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace tempo {

/// Uninitialised, 64-byte aligned array of floats with shared ownership.
/// Copying an AlignedBuffer shares the memory (no hidden deep copies); use copy_of() to duplicate.
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  /// Allocates n floats (uninitialised). Throws std::bad_alloc on failure.
  explicit AlignedBuffer(int64_t n);

  float* data() const { return data_.get(); }
  int64_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  /// True when no other AlignedBuffer shares this memory.
  bool unique() const { return data_.use_count() <= 1; }

  /// A deep copy of the first n floats.
  static AlignedBuffer copy_of(const float* src, int64_t n);

 private:
  std::shared_ptr<float[]> data_;
  int64_t size_ = 0;
};

}  // namespace tempo
