// The CUDA compute backend: cuBLAS products and cuDNN convolutions on blinded tensors.
// No CUDA header here: tests and the factory include this without the toolkit's include path.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "worker/backend.h"

namespace tempo::worker {

/// What a CudaBackend moved and kept, for tests and benchmarks.
struct CudaBackendStats {
  uint64_t h2d_bytes = 0;         ///< host-to-device bytes copied
  uint64_t d2h_bytes = 0;         ///< device-to-host bytes copied
  uint64_t uploads = 0;           ///< operands copied to the device
  uint64_t retained_hits = 0;     ///< operands found on the device (retained), not copied again
  int64_t retained_bytes = 0;     ///< device bytes of retained operands now
  int64_t retained_tensors = 0;   ///< retained storages now
  int64_t pool_in_use_bytes = 0;  ///< device memory handed out now (retained operands, workspace)
  int64_t pool_peak_bytes = 0;    ///< largest device memory held by the pool so far
  uint64_t conv_plans = 0;        ///< convolution shapes seen (one algorithm search each)
  // Time per phase, summed over ops (CUDA events): the copy stream's span from the first byte
  // staged to the last uploaded (CPU staging included), the kernels (algorithm searches
  // included), and the result's way back (CPU copy-out included).
  double h2d_seconds = 0, compute_seconds = 0, d2h_seconds = 0;
  uint64_t in_place_bytes = 0;  ///< of h2d and d2h: copied by DMA from or to page-locked tensors
  uint64_t ops = 0;             ///< products and convolutions run
  double busy_seconds = 0;      ///< host wall time inside them
};

/// The stats as one JSON object (for logs and benchmarks).
std::string to_json(const CudaBackendStats& s);

/// Runs the blinded products on one NVIDIA GPU.
///
/// With the environment variable TEMPO_CUDA_STATS set (not "0"), the destructor prints
/// "tempo-cuda-stats: {...}" (to_json of stats()) on stderr: bench/gpu/run_headline.sh reads it
/// for the per-step breakdown of transfers and GPU time.
///
/// Products: cuBLAS sgemm / strided-batched sgemm on the row-major tensors through the
/// column-major identity C^T = op(B)^T op(A)^T (no transposition pass). Convolutions: cuDNN
/// (CudnnConv: algorithm found once per shape, workspace kept). Device memory comes from a
/// caching pool; host copies go through pinned staging buffers on a copy stream, so the CPU side
/// of one operand's copy overlaps the DMA of the previous chunk (and of the other operand), and
/// large results come back in chunks that are copied out while the next chunk's DMA runs.
///
/// Operands retained by the Worker (handles, Backend::retain) keep their device copy until
/// release(): the backward pass then reads X' and W' from device memory without a new upload.
///
/// Precision: kFp32 (default) computes in IEEE fp32 (cuBLAS default math, cuDNN FMA kernels);
/// kTf32 lets cuBLAS and cuDNN use TF32 tensor cores (fp32 accumulation).
class CudaBackend final : public Backend {
 public:
  /// Opens device `device` (cuda:N). `copy_threads` <= 0: up to 8 of omp_get_max_threads().
  /// Throws std::runtime_error "no CUDA device: ..." when the device is missing, and a library
  /// error when cuBLAS or cuDNN cannot start.
  CudaBackend(int device, Precision precision = Precision::kFp32, int copy_threads = 0);
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  std::string name() const override;
  std::string device() const override;

  BlindedTensor matmul(const BlindedTensor& a, const BlindedTensor& b, bool trans_a,
                       bool trans_b) override;
  BlindedTensor batched_matmul(const BlindedTensor& a, const BlindedTensor& b, bool trans_a,
                               bool trans_b) override;
  BlindedTensor conv_forward(const BlindedTensor& x, const BlindedTensor& w,
                             const protocol::ConvParams& p) override;
  BlindedTensor conv_backward_data(const BlindedTensor& dy, const BlindedTensor& w,
                                   const protocol::ConvParams& p, const Shape& x_shape) override;
  BlindedTensor conv_backward_weights(const BlindedTensor& x, const BlindedTensor& dy,
                                      const protocol::ConvParams& p, const Shape& w_shape) override;

  void retain(const BlindedTensor& t) override;
  void release(const BlindedTensor& t) override;

  Precision precision() const override;
  CudaBackendStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// "" when cuda:`device` can be opened, else why not ("no CUDA device: cudaGetDeviceCount ...").
std::string cuda_device_problem(int device);

/// A CudaBackend as a Backend: what make_backend("cuda:N") returns, through the shared library's
/// CudaModule (cuda_module.h, loaded by backend_factory.cpp).
std::unique_ptr<Backend> make_cuda_backend(int device, Precision precision, int copy_threads);

}  // namespace tempo::worker
