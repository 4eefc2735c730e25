#include "worker/cuda/device_pool.h"

#include <bit>
#include <string>

#include "worker/cuda/cuda_check.h"

namespace tempo::worker::cuda {

DevicePool::Block& DevicePool::Block::operator=(Block&& o) noexcept {
  if (this != &o) {
    reset();
    pool_ = o.pool_;
    ptr_ = o.ptr_;
    bytes_ = o.bytes_;
    class_bytes_ = o.class_bytes_;
    o.pool_ = nullptr;
    o.ptr_ = nullptr;
    o.bytes_ = o.class_bytes_ = 0;
  }
  return *this;
}

void DevicePool::Block::reset() {
  if (ptr_ != nullptr) pool_->give_back(ptr_, class_bytes_);
  pool_ = nullptr;
  ptr_ = nullptr;
  bytes_ = class_bytes_ = 0;
}

DevicePool::~DevicePool() { trim(); }

size_t DevicePool::size_class(size_t bytes) {
  constexpr size_t kMin = 4096;
  if (bytes <= kMin) return kMin;
  // Steps of a quarter of the largest power of two not above `bytes`.
  const size_t step = std::bit_floor(bytes) / 4;
  return (bytes + step - 1) / step * step;
}

DevicePool::Block DevicePool::allocate(size_t bytes) {
  const size_t cls = size_class(bytes);
  void* ptr = nullptr;
  if (auto it = free_.find(cls); it != free_.end() && !it->second.empty()) {
    ptr = it->second.back();
    it->second.pop_back();
    cached_ -= static_cast<int64_t>(cls);
  } else {
    cudaError_t e = cudaMalloc(&ptr, cls);
    if (e == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      trim();
      e = cudaMalloc(&ptr, cls);
    }
    if (e == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      size_t free_bytes = 0, total = 0;
      cudaMemGetInfo(&free_bytes, &total);
      throw std::runtime_error("cuda: out of device memory allocating " + std::to_string(cls) +
                               " bytes (" + std::to_string(in_use_) + " bytes in use by this " +
                               "backend, " + std::to_string(free_bytes) + " of " +
                               std::to_string(total) + " free on the device)");
    }
    check(e, "cudaMalloc");
  }
  in_use_ += static_cast<int64_t>(cls);
  if (in_use_ + cached_ > peak_) peak_ = in_use_ + cached_;
  Block b;
  b.pool_ = this;
  b.ptr_ = ptr;
  b.bytes_ = bytes;
  b.class_bytes_ = cls;
  return b;
}

void DevicePool::give_back(void* ptr, size_t class_bytes) {
  free_[class_bytes].push_back(ptr);
  in_use_ -= static_cast<int64_t>(class_bytes);
  cached_ += static_cast<int64_t>(class_bytes);
}

void DevicePool::trim() {
  // Blocks may still be read by queued work of the caller's streams: wait for it first.
  cudaDeviceSynchronize();
  for (auto& [cls, ptrs] : free_) {
    for (void* p : ptrs) cudaFree(p);
    cached_ -= static_cast<int64_t>(cls * ptrs.size());
  }
  free_.clear();
}

}  // namespace tempo::worker::cuda
