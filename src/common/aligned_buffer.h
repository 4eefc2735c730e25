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

/// The process-wide cache of freed large blocks behind AlignedBuffer (counters in bytes).
struct BufferCacheStats {
  size_t cached = 0;     ///< freed blocks held for reuse
  size_t live = 0;       ///< large blocks in use now
  size_t peak_live = 0;  ///< the most large blocks in use at once so far
  size_t limit = 0;      ///< what the cache may hold now: buffer_cache_limit(peak_live, usable)
};
BufferCacheStats buffer_cache_stats();

/// Where the large blocks (those the cache recycles) come from; {} is aligned_alloc/free. A CUDA
/// backend installs page-locked host memory, which the GPU's DMA engines read and write in place
/// (worker/cuda/pinned_staging.h). allocate returns a 64-byte aligned block, or nullptr when it
/// has none to give (the block then comes from aligned_alloc).
struct LargeBlockSource {
  void* (*allocate)(size_t bytes) = nullptr;
  void (*release)(void* p) = nullptr;
};

/// Large blocks allocated from now on come from `source`; cached blocks from the previous one are
/// released, and blocks in use go back to the source they came from. Thread-safe.
void set_large_block_source(LargeBlockSource source);
/// The source in force ({} for the default).
LargeBlockSource large_block_source();

/// True when an AlignedBuffer of n floats is a large block (comes from the LargeBlockSource).
bool is_large_block(int64_t n);

/// How many bytes of freed blocks the cache keeps when the process's large blocks peaked at
/// `peak_live` bytes and it may use `usable` bytes of memory: twice the peak (a training step
/// frees and reallocates the same sizes, and the blocks of one size peak at different times than
/// another's), at least 4 GiB, and never more than half of `usable`.
size_t buffer_cache_limit(size_t peak_live, size_t usable);

/// The memory this process may use: physical RAM, or a cgroup (v1 or v2) limit on it or its
/// ancestors when lower. Read from the host's /proc and /sys, which a TEE does not vouch for: it
/// only sizes the block cache, so a false value costs speed or memory, nothing else.
size_t usable_memory_bytes();

}  // namespace tempo
