#include "common/aligned_buffer.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <new>
#include <string>

namespace tempo {

namespace {

constexpr size_t kAlignment = 64;
// Large blocks are recycled instead of returned to the kernel: a training step allocates the same
// big activations every time, and fresh pages from mmap cost a page fault each (measured: 40% of
// the time of element-wise layers). Small blocks go straight to malloc.
constexpr size_t kCacheMinBytes = size_t{256} << 10;
// The cache may always hold this much (buffer_cache_limit): enough for the models of the tests
// and the demo, whose large blocks peak far below it.
constexpr size_t kCacheFloor = size_t{4} << 30;

void release_with_free(void* p) { std::free(p); }

/// One block and the function that gives it back to where it came from.
struct Block {
  void* p = nullptr;
  void (*release)(void*) = release_with_free;
};

/// A process-wide cache of freed large blocks, by exact (rounded) size.
class BlockCache {
 public:
  Block take(size_t bytes) {
    const bool large = bytes >= kCacheMinBytes;
    LargeBlockSource source;
    if (large) {
      std::lock_guard lock(mu_);
      // The most recently freed block of this size (equal keys keep insertion order): its
      // lines are the likeliest to be still in cache, so writing it costs fewer misses.
      auto [first, last] = free_.equal_range(bytes);
      if (first != last) {
        auto it = std::prev(last);
        const Block b = it->second;
        free_.erase(it);
        cached_ -= bytes;
        count_live(bytes);
        return b;
      }
      source = source_;
    }
    Block b;
    if (source.allocate) {
      b.p = source.allocate(bytes);
      b.release = source.release;
    }
    if (!b.p) {  // the default, also when the source has no more to give
      b.release = release_with_free;
      b.p = std::aligned_alloc(kAlignment, bytes);
      if (!b.p) {
        release_all();
        b.p = std::aligned_alloc(kAlignment, bytes);
      }
      if (!b.p) throw std::bad_alloc();
    }
    if (large) {
      std::lock_guard lock(mu_);
      count_live(bytes);
    }
    return b;
  }

  void give(Block b, size_t bytes) {
    if (bytes >= kCacheMinBytes) {
      std::lock_guard lock(mu_);
      live_ -= bytes;
      // Blocks of a source no longer in force are not recycled: new tensors come from the new one.
      const bool current = b.release == (source_.allocate ? source_.release : release_with_free);
      if (current && cached_ + bytes <= buffer_cache_limit(peak_live_, usable_memory_bytes())) {
        free_.emplace(bytes, b);
        cached_ += bytes;
        return;
      }
    }
    b.release(b.p);
  }

  void release_all() {
    std::lock_guard lock(mu_);
    for (auto& [_, b] : free_) b.release(b.p);
    free_.clear();
    cached_ = 0;
  }

  LargeBlockSource source() {
    std::lock_guard lock(mu_);
    return source_;
  }

  void set_source(LargeBlockSource source) {
    {
      std::lock_guard lock(mu_);
      source_ = source.allocate && source.release ? source : LargeBlockSource{};
    }
    release_all();  // cached blocks came from the previous source
  }

  BufferCacheStats stats() {
    std::lock_guard lock(mu_);
    return {.cached = cached_,
            .live = live_,
            .peak_live = peak_live_,
            .limit = buffer_cache_limit(peak_live_, usable_memory_bytes())};
  }

  ~BlockCache() { release_all(); }

 private:
  void count_live(size_t bytes) {  // mu_ held
    live_ += bytes;
    peak_live_ = std::max(peak_live_, live_);
  }

  std::mutex mu_;
  std::multimap<size_t, Block> free_;
  LargeBlockSource source_;
  size_t cached_ = 0;
  size_t live_ = 0;
  size_t peak_live_ = 0;
};

/// The lowest limit in `file` under `base` + `path` and its ancestors; SIZE_MAX when none.
size_t lowest_limit_upwards(const std::string& base, std::string path, const char* file) {
  size_t limit = SIZE_MAX;
  if (path.empty() || path[0] != '/') return limit;
  for (;;) {
    std::ifstream in(base + (path == "/" ? std::string() : path) + "/" + file);
    std::string value;
    if (in >> value && value != "max") {
      try {
        limit = std::min<size_t>(limit, std::stoull(value));
      } catch (const std::exception&) {  // an unreadable limit limits nothing
      }
    }
    if (path == "/") return limit;
    const size_t slash = path.find_last_of('/');
    path = slash == 0 ? "/" : path.substr(0, slash);
  }
}

/// The memory limit of this process's cgroup: v2 (memory.max) or v1's memory controller
/// (memory.limit_in_bytes), the lowest along the path up to the root; SIZE_MAX when none.
size_t cgroup_memory_limit() {
  std::ifstream self("/proc/self/cgroup");
  std::string line;
  size_t limit = SIZE_MAX;
  while (std::getline(self, line)) {
    // hierarchy-id:controllers:path
    const size_t a = line.find(':'), b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos) continue;
    const std::string controllers = line.substr(a + 1, b - a - 1), path = line.substr(b + 1);
    if (controllers.empty())
      limit = std::min(limit, lowest_limit_upwards("/sys/fs/cgroup", path, "memory.max"));
    else if (controllers == "memory")
      limit = std::min(
          limit, lowest_limit_upwards("/sys/fs/cgroup/memory", path, "memory.limit_in_bytes"));
  }
  return limit;
}

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

size_t buffer_cache_limit(size_t peak_live, size_t usable) {
  const size_t twice_peak = peak_live > SIZE_MAX / 2 ? SIZE_MAX : 2 * peak_live;
  return std::min(std::max(kCacheFloor, twice_peak), usable / 2);
}

size_t usable_memory_bytes() {
  static const size_t usable = [] {
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    const size_t ram =
        pages > 0 && page > 0 ? static_cast<size_t>(pages) * static_cast<size_t>(page) : SIZE_MAX;
    return std::min(ram, cgroup_memory_limit());
  }();
  return usable;
}

BufferCacheStats buffer_cache_stats() { return cache().stats(); }

void set_large_block_source(LargeBlockSource source) { cache().set_source(source); }

LargeBlockSource large_block_source() { return cache().source(); }

bool is_large_block(int64_t n) { return rounded_bytes(n) >= kCacheMinBytes; }

AlignedBuffer::AlignedBuffer(int64_t n) : size_(n) {
  if (n < 0) throw std::bad_alloc();
  if (n == 0) return;
  const size_t bytes = rounded_bytes(n);
  const Block b = cache().take(bytes);
  data_ =
      std::shared_ptr<float[]>(static_cast<float*>(b.p), [bytes, release = b.release](float* q) {
        cache().give({q, release}, bytes);
      });
}

AlignedBuffer AlignedBuffer::copy_of(const float* src, int64_t n) {
  AlignedBuffer b(n);
  if (n > 0) std::memcpy(b.data(), src, static_cast<size_t>(n) * sizeof(float));
  return b;
}

}  // namespace tempo
