// cuDNN convolutions (forward, backward-data, backward-filter) with algorithms chosen once per
// shape and a workspace kept between calls.
#pragma once

#include <cudnn.h>

#include <array>
#include <cstdint>
#include <map>
#include <memory>

#include "common/shape.h"
#include "common/worker_protocol.h"
#include "worker/backend.h"
#include "worker/cuda/device_pool.h"

namespace tempo::worker::cuda {

/// Runs NCHW fp32 convolutions (dilation 1, groups 1, cross-correlation like oneDNN and PyTorch)
/// with cuDNN's legacy API on device pointers, on the stream of `handle`.
///
/// The first call for a shape builds its descriptors and picks the algorithm with
/// cudnnFind*AlgorithmEx (timed on the call's own buffers, workspace capped at
/// kMaxWorkspaceBytes), falling back to cudnnGet*_v7's heuristic order; later calls reuse both.
/// fp32 restricts cuDNN to FMA kernels (CUDNN_FMA_MATH: on Ampere and later, the default math
/// would let it use TF32); tf32 allows tensor-core kernels (CUDNN_TENSOR_OP_MATH), never a
/// conversion to fp16/bf16.
class CudnnConv {
 public:
  static constexpr size_t kMaxWorkspaceBytes = size_t{1} << 30;

  CudnnConv(cudnnHandle_t handle, DevicePool& pool, Precision precision);
  ~CudnnConv();
  CudnnConv(const CudnnConv&) = delete;
  CudnnConv& operator=(const CudnnConv&) = delete;

  void forward(const float* x, const Shape& xs, const float* w, const Shape& ws,
               const protocol::ConvParams& p, float* y, const Shape& ys);
  void backward_data(const float* dy, const Shape& dys, const float* w, const Shape& ws,
                     const protocol::ConvParams& p, float* dx, const Shape& xs);
  void backward_weights(const float* x, const Shape& xs, const float* dy, const Shape& dys,
                        const protocol::ConvParams& p, float* dw, const Shape& ws);

  size_t plans() const { return plans_.size(); }

 private:
  enum class Kind { kForward, kBackwardData, kBackwardWeights };
  struct Plan;
  using Key = std::array<int64_t, 14>;

  /// The plan of this shape, built (descriptors, algorithm search) on first use. The buffers
  /// are those of the call: the search runs the candidate algorithms on them.
  Plan& plan(Kind kind, const Shape& xs, const Shape& ws, const Shape& ys,
             const protocol::ConvParams& p, const float* x, const float* w, const float* y);
  /// A workspace of at least `bytes`, kept between calls.
  void* workspace(size_t bytes);

  cudnnHandle_t handle_;
  DevicePool& pool_;
  Precision precision_;
  std::map<Key, std::unique_ptr<Plan>> plans_;
  DevicePool::Block workspace_;
};

}  // namespace tempo::worker::cuda
