#include "worker/cuda/pinned_staging.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "worker/cuda/cuda_check.h"

namespace tempo::worker::cuda {

namespace {

/// True for page-locked host memory (cudaHostAlloc, cudaHostRegister), which DMA reads in place.
bool page_locked(const void* p) {
  cudaPointerAttributes a{};
  if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
    cudaGetLastError();  // an unknown pointer is pageable memory, not an error
    return false;
  }
  return a.type == cudaMemoryTypeHost;
}

}  // namespace

PinnedStaging::PinnedStaging(int copy_threads, size_t slot_bytes, int slots)
    : copy_threads_(std::max(1, copy_threads)), slot_bytes_(slot_bytes) {
  try {
    for (int i = 0; i < slots; ++i) {
      void* p = nullptr;
      TEMPO_CUDA_CHECK(cudaHostAlloc(&p, slot_bytes_, cudaHostAllocDefault));
      slot_.push_back(static_cast<char*>(p));
      cudaEvent_t e = nullptr;
      TEMPO_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
      ready_.push_back(e);
    }
    TEMPO_CUDA_CHECK(cudaEventCreateWithFlags(&in_place_done_, cudaEventDisableTiming));
  } catch (...) {
    for (char* p : slot_) cudaFreeHost(p);
    for (cudaEvent_t e : ready_) cudaEventDestroy(e);
    if (in_place_done_) cudaEventDestroy(in_place_done_);
    throw;
  }
}

PinnedStaging::~PinnedStaging() {
  for (cudaEvent_t e : ready_) cudaEventSynchronize(e);
  for (char* p : slot_) cudaFreeHost(p);
  for (cudaEvent_t e : ready_) cudaEventDestroy(e);
  cudaEventDestroy(in_place_done_);
}

void PinnedStaging::copy_in_place(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                                  cudaStream_t stream) {
  TEMPO_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, kind, stream));
  TEMPO_CUDA_CHECK(cudaEventRecord(in_place_done_, stream));
  TEMPO_CUDA_CHECK(cudaEventSynchronize(in_place_done_));
  in_place_bytes_ += bytes;
}

void PinnedStaging::copy(void* dst, const void* src, size_t bytes) const {
  // One thread copies ~10 GB/s, below the bus: split big chunks over the copy threads.
  constexpr size_t kPiece = size_t{1} << 20;
  const auto pieces = static_cast<int64_t>((bytes + kPiece - 1) / kPiece);
  if (copy_threads_ <= 1 || pieces < 2) {
    std::memcpy(dst, src, bytes);
    return;
  }
  auto* d = static_cast<char*>(dst);
  const auto* s = static_cast<const char*>(src);
#pragma omp parallel for num_threads(std::min <int64_t>(copy_threads_, pieces)) schedule(static)
  for (int64_t i = 0; i < pieces; ++i) {
    const size_t off = static_cast<size_t>(i) * kPiece;
    std::memcpy(d + off, s + off, std::min(kPiece, bytes - off));
  }
}

void PinnedStaging::upload(void* dst, const void* src, size_t bytes, cudaStream_t stream) {
  if (page_locked(src)) return copy_in_place(dst, src, bytes, cudaMemcpyHostToDevice, stream);
  const size_t slots = slot_.size();
  for (size_t off = 0; off < bytes; off += slot_bytes_) {
    const size_t n = std::min(slot_bytes_, bytes - off);
    const size_t k = next_++ % slots;
    TEMPO_CUDA_CHECK(cudaEventSynchronize(ready_[k]));  // the slot's previous DMA is done
    copy(slot_[k], static_cast<const char*>(src) + off, n);
    TEMPO_CUDA_CHECK(cudaMemcpyAsync(static_cast<char*>(dst) + off, slot_[k], n,
                                     cudaMemcpyHostToDevice, stream));
    TEMPO_CUDA_CHECK(cudaEventRecord(ready_[k], stream));
  }
}

void PinnedStaging::download(void* dst, const void* src, size_t bytes, cudaStream_t stream) {
  if (page_locked(dst)) return copy_in_place(dst, src, bytes, cudaMemcpyDeviceToHost, stream);
  const size_t slots = slot_.size();
  const size_t chunks = (bytes + slot_bytes_ - 1) / slot_bytes_;
  const size_t first = next_;
  // Keep up to `slots` DMAs in flight; copy each chunk out of its slot as soon as it lands.
  auto issue = [&](size_t c) {
    const size_t off = c * slot_bytes_, n = std::min(slot_bytes_, bytes - off);
    const size_t k = (first + c) % slots;
    // The slot may still feed an upload queued on another stream.
    TEMPO_CUDA_CHECK(cudaEventSynchronize(ready_[k]));
    TEMPO_CUDA_CHECK(cudaMemcpyAsync(slot_[k], static_cast<const char*>(src) + off, n,
                                     cudaMemcpyDeviceToHost, stream));
    TEMPO_CUDA_CHECK(cudaEventRecord(ready_[k], stream));
  };
  for (size_t c = 0; c < std::min(chunks, slots); ++c) issue(c);
  for (size_t c = 0; c < chunks; ++c) {
    const size_t off = c * slot_bytes_, n = std::min(slot_bytes_, bytes - off);
    const size_t k = (first + c) % slots;
    TEMPO_CUDA_CHECK(cudaEventSynchronize(ready_[k]));
    copy(static_cast<char*>(dst) + off, slot_[k], n);
    if (c + slots < chunks) issue(c + slots);
  }
  next_ = first + chunks;
}

}  // namespace tempo::worker::cuda
