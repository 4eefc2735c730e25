#include "common/aligned_buffer.h"

#include <cstdlib>
#include <cstring>
#include <iterator>
#include <map>
#include <mutex>
#include <new>

namespace tempo {

namespace {

constexpr size_t kAlignment = 64;
// Large blocks are recycled instead of returned to the kernel: a training step allocates the same
// big activations every time, and fresh pages from mmap cost a page fault each (measured: 40% of
// the time of element-wise layers). Small blocks go straight to malloc.
constexpr size_t kCacheMinBytes = size_t{256} << 10;
constexpr size_t kCacheMaxTotal = size_t{4} << 30;

/// A process-wide cache of freed large blocks, by exact (rounded) size.
class BlockCache {
 public:
  void* take(size_t bytes) {
    if (bytes >= kCacheMinBytes) {
      std::lock_guard lock(mu_);
      // The most recently freed block of this size (equal keys keep insertion order): its
      // lines are the likeliest to be still in cache, so writing it costs fewer misses.
      auto [first, last] = free_.equal_range(bytes);
      if (first != last) {
        auto it = std::prev(last);
        void* p = it->second;
        free_.erase(it);
        cached_ -= bytes;
        return p;
      }
    }
    void* p = std::aligned_alloc(kAlignment, bytes);
    if (!p) {
      release_all();
      p = std::aligned_alloc(kAlignment, bytes);
    }
    if (!p) throw std::bad_alloc();
    return p;
  }

  void give(void* p, size_t bytes) {
    if (bytes >= kCacheMinBytes) {
      std::lock_guard lock(mu_);
      if (cached_ + bytes <= kCacheMaxTotal) {
        free_.emplace(bytes, p);
        cached_ += bytes;
        return;
      }
    }
    std::free(p);
  }

  void release_all() {
    std::lock_guard lock(mu_);
    for (auto& [_, p] : free_) std::free(p);
    free_.clear();
    cached_ = 0;
  }

  ~BlockCache() { release_all(); }

 private:
  std::mutex mu_;
  std::multimap<size_t, void*> free_;
  size_t cached_ = 0;
};

BlockCache& cache() {
  static BlockCache* c = new BlockCache;  // never destroyed: buffers may outlive static teardown
  return *c;
}

size_t rounded_bytes(int64_t n) {
  size_t bytes = static_cast<size_t>(n) * sizeof(float);
  // Round large blocks to 64 KiB so near-equal sizes share cache entries.
  const size_t granule = bytes >= kCacheMinBytes ? size_t{64} << 10 : kAlignment;
  return (bytes + granule - 1) / granule * granule;
}

}  // namespace

AlignedBuffer::AlignedBuffer(int64_t n) : size_(n) {
  if (n < 0) throw std::bad_alloc();
  if (n == 0) return;
  const size_t bytes = rounded_bytes(n);
  void* p = cache().take(bytes);
  data_ = std::shared_ptr<float[]>(static_cast<float*>(p),
                                   [bytes](float* q) { cache().give(q, bytes); });
}

AlignedBuffer AlignedBuffer::copy_of(const float* src, int64_t n) {
  AlignedBuffer b(n);
  if (n > 0) std::memcpy(b.data(), src, static_cast<size_t>(n) * sizeof(float));
  return b;
}

}  // namespace tempo
