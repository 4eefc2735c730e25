// Host <-> device copies of pageable memory through a ring of pinned buffers.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace tempo::worker::cuda {

/// BlindedTensors live in ordinary (pageable) memory, which the DMA engines cannot read directly:
/// a plain cudaMemcpy stages it through a small driver buffer at a fraction of the bus speed.
/// This class stages through its own ring of pinned slots instead: CPU threads copy chunk i into
/// (out of) one slot while the DMA engine moves chunk i-1 (i+1), so the CPU copies and the DMA
/// overlap, and successive uploads (A, then B) pipeline with each other. Host memory that is
/// already page-locked (the tensors, once a CUDA backend installed its LargeBlockSource) needs no
/// staging: it is copied by one DMA in place. Not thread-safe.
class PinnedStaging {
 public:
  /// `copy_threads` CPU threads copy each chunk; `slot_bytes` per slot, `slots` slots.
  explicit PinnedStaging(int copy_threads, size_t slot_bytes = size_t{8} << 20, int slots = 4);
  ~PinnedStaging();
  PinnedStaging(const PinnedStaging&) = delete;
  PinnedStaging& operator=(const PinnedStaging&) = delete;

  /// Queues the copy of `bytes` from host `src` to device `dst` on `stream`. Returns once `src`
  /// has been read; the device copy completes in `stream` order.
  void upload(void* dst, const void* src, size_t bytes, cudaStream_t stream);
  /// Copies `bytes` from device `src` to host `dst`, after the work queued on `stream`. Returns
  /// when `dst` holds them all.
  void download(void* dst, const void* src, size_t bytes, cudaStream_t stream);

  size_t slot_bytes() const { return slot_bytes_; }
  /// Bytes uploaded or downloaded in place (page-locked host memory, no staging copy) so far.
  uint64_t in_place_bytes() const { return in_place_bytes_; }

 private:
  /// memcpy split over the copy threads.
  void copy(void* dst, const void* src, size_t bytes) const;
  /// One DMA between page-locked host memory and the device, in `stream` order; returns when it
  /// is done (the host memory may be reused at once, as with the staged path).
  void copy_in_place(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                     cudaStream_t stream);

  int copy_threads_;
  size_t slot_bytes_;
  std::vector<char*> slot_;         // pinned host memory
  std::vector<cudaEvent_t> ready_;  // recorded after the DMA that last used the slot
  size_t next_ = 0;                 // round-robin position in the ring
  cudaEvent_t in_place_done_ = nullptr;
  uint64_t in_place_bytes_ = 0;
};

}  // namespace tempo::worker::cuda
