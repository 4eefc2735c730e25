// A caching allocator for device memory: cudaMalloc is slow and synchronises the device, so
// blocks are kept for reuse across requests instead of being freed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

namespace tempo::worker::cuda {

/// Device memory in size classes (quarter-power-of-two steps, so at most 25% is wasted), kept in
/// per-class free lists when returned. When cudaMalloc fails, the free lists are given back to the
/// driver and the allocation retried once. Not thread-safe (one backend, one thread).
///
/// A block may be returned while work that uses it is queued only if every later user of the
/// pool runs on the same stream order; CudaBackend returns blocks after synchronising.
class DevicePool {
 public:
  /// Owns one device block; returns it to the pool when destroyed. Move-only.
  class Block {
   public:
    Block() = default;
    Block(Block&& o) noexcept { *this = std::move(o); }
    Block& operator=(Block&& o) noexcept;
    Block(const Block&) = delete;
    Block& operator=(const Block&) = delete;
    ~Block() { reset(); }

    void* get() const { return ptr_; }
    float* floats() const { return static_cast<float*>(ptr_); }
    size_t bytes() const { return bytes_; }  ///< the size asked for
    explicit operator bool() const { return ptr_ != nullptr; }
    void reset();

   private:
    friend class DevicePool;
    DevicePool* pool_ = nullptr;
    void* ptr_ = nullptr;
    size_t bytes_ = 0, class_bytes_ = 0;
  };

  DevicePool() = default;
  /// Frees the cached blocks; every Block must have been returned before.
  ~DevicePool();
  DevicePool(const DevicePool&) = delete;
  DevicePool& operator=(const DevicePool&) = delete;

  /// A block of at least `bytes` (> 0) on the current device. Throws std::runtime_error
  /// ("cuda: out of device memory ...") when the device has no room even after trimming.
  Block allocate(size_t bytes);
  /// Gives every cached free block back to the driver.
  void trim();

  int64_t in_use_bytes() const { return in_use_; }
  int64_t cached_bytes() const { return cached_; }  ///< free, kept for reuse
  int64_t peak_bytes() const { return peak_; }      ///< largest in_use + cached so far

  /// The size class of a request: `bytes` rounded up to a quarter-power-of-two step.
  static size_t size_class(size_t bytes);

 private:
  void give_back(void* ptr, size_t class_bytes);

  std::unordered_map<size_t, std::vector<void*>> free_;
  int64_t in_use_ = 0, cached_ = 0, peak_ = 0;
};

}  // namespace tempo::worker::cuda
