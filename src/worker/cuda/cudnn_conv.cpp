#include "worker/cuda/cudnn_conv.h"

#include <algorithm>
#include <string>

#include "worker/cuda/cuda_check.h"

namespace tempo::worker::cuda {

struct CudnnConv::Plan {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;  // y: the output, dY for the backward ops
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  int algo = 0;
  size_t workspace = 0;

  Plan() = default;
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;
  ~Plan() {
    if (x) cudnnDestroyTensorDescriptor(x);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (w) cudnnDestroyFilterDescriptor(w);
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
  }
};

namespace {

int to_int(int64_t v) { return static_cast<int>(v); }  // dims were validated to fit

cudnnMathType_t requested_math(Precision p) {
  return p == Precision::kTf32 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH;
}

// Algorithms that compute each output as a sum of the exact products of its inputs (in some
// order), whose rounding the masters' checks bound (docs/integrity.md: gamma_k per dot product).
// FFT and Winograd transform the operands first: their error is relative to whole transformed
// tiles, not to each sum of |products|, so an honest result could fail a check. They are never
// chosen; what that costs is measured in docs/gpu.md.
bool sums_products(cudnnConvolutionFwdAlgo_t a) {
  return a == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM ||
         a == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM ||
         a == CUDNN_CONVOLUTION_FWD_ALGO_GEMM || a == CUDNN_CONVOLUTION_FWD_ALGO_DIRECT;
}
bool sums_products(cudnnConvolutionBwdDataAlgo_t a) {
  return a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_0 || a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
}
bool sums_products(cudnnConvolutionBwdFilterAlgo_t a) {
  return a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0 || a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1 ||
         a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3;
}

/// A search result we may run: it worked, fits the workspace cap, keeps to the precision and
/// sums products (sums_products).
template <typename Perf>
bool acceptable(const Perf& r, Precision p, size_t max_workspace) {
  if (r.status != CUDNN_STATUS_SUCCESS || r.memory > max_workspace) return false;
  if (!sums_products(r.algo)) return false;
  if (r.mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) return false;  // fp16/bf16 inside
  return p == Precision::kTf32 || r.mathType != CUDNN_TENSOR_OP_MATH;
}

/// The first acceptable result (Find sorts by time, Get_v7 by expected speed), or -1.
template <typename Perf>
int pick(const Perf* results, int n, Precision p, size_t max_workspace) {
  for (int i = 0; i < n; ++i)
    if (acceptable(results[i], p, max_workspace)) return i;
  return -1;
}

}  // namespace

CudnnConv::CudnnConv(cudnnHandle_t handle, DevicePool& pool, Precision precision)
    : handle_(handle), pool_(pool), precision_(precision) {}

CudnnConv::~CudnnConv() = default;

void* CudnnConv::workspace(size_t bytes) {
  if (bytes == 0) return nullptr;
  if (workspace_.bytes() < bytes) {
    workspace_.reset();
    workspace_ = pool_.allocate(bytes);
  }
  return workspace_.get();
}

CudnnConv::Plan& CudnnConv::plan(Kind kind, const Shape& xs, const Shape& ws, const Shape& ys,
                                 const protocol::ConvParams& p, const float* x, const float* w,
                                 const float* y) {
  const Key key = {static_cast<int64_t>(kind),
                   xs[0],
                   xs[1],
                   xs[2],
                   xs[3],
                   ws[0],
                   ws[1],
                   ws[2],
                   ws[3],
                   p.stride_h,
                   p.stride_w,
                   p.pad_h,
                   p.pad_w,
                   0};
  if (auto it = plans_.find(key); it != plans_.end()) return *it->second;

  auto pl = std::make_unique<Plan>();
  TEMPO_CUDA_CHECK(cudnnCreateTensorDescriptor(&pl->x));
  TEMPO_CUDA_CHECK(cudnnCreateTensorDescriptor(&pl->y));
  TEMPO_CUDA_CHECK(cudnnCreateFilterDescriptor(&pl->w));
  TEMPO_CUDA_CHECK(cudnnCreateConvolutionDescriptor(&pl->conv));
  TEMPO_CUDA_CHECK(cudnnSetTensor4dDescriptor(pl->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT,
                                              to_int(xs[0]), to_int(xs[1]), to_int(xs[2]),
                                              to_int(xs[3])));
  TEMPO_CUDA_CHECK(cudnnSetTensor4dDescriptor(pl->y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT,
                                              to_int(ys[0]), to_int(ys[1]), to_int(ys[2]),
                                              to_int(ys[3])));
  TEMPO_CUDA_CHECK(cudnnSetFilter4dDescriptor(pl->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW,
                                              to_int(ws[0]), to_int(ws[1]), to_int(ws[2]),
                                              to_int(ws[3])));
  TEMPO_CUDA_CHECK(cudnnSetConvolution2dDescriptor(pl->conv, to_int(p.pad_h), to_int(p.pad_w),
                                                   to_int(p.stride_h), to_int(p.stride_w), 1, 1,
                                                   CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  TEMPO_CUDA_CHECK(cudnnSetConvolutionMathType(pl->conv, requested_math(precision_)));

  // The search's workspace: as much as the cap and half the free memory allow, for this call
  // only (returned to the pool afterwards).
  size_t free_bytes = 0, total = 0;
  TEMPO_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total));
  const size_t cap = std::min(kMaxWorkspaceBytes, free_bytes / 2);
  DevicePool::Block search_ws = pool_.allocate(std::max<size_t>(cap, 1));
  // Find runs every algorithm on the call's buffers; the output buffer is overwritten, which is
  // fine since the call is about to compute it.
  auto* out_x = const_cast<float*>(x);
  auto* out_w = const_cast<float*>(w);
  auto* out_y = const_cast<float*>(y);
  int n = 0, chosen = -1;
  cudnnMathType_t math = requested_math(precision_);
  switch (kind) {
    case Kind::kForward: {
      cudnnConvolutionFwdAlgoPerf_t r[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
      TEMPO_CUDA_CHECK(cudnnFindConvolutionForwardAlgorithmEx(
          handle_, pl->x, x, pl->w, w, pl->conv, pl->y, out_y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n,
          r, search_ws.get(), cap));
      chosen = pick(r, n, precision_, cap);
      if (chosen < 0) {
        TEMPO_CUDA_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(
            handle_, pl->x, pl->w, pl->conv, pl->y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, r));
        chosen = pick(r, n, precision_, cap);
      }
      if (chosen >= 0) {
        pl->algo = r[chosen].algo;
        math = r[chosen].mathType;
      }
      break;
    }
    case Kind::kBackwardData: {
      cudnnConvolutionBwdDataAlgoPerf_t r[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
      TEMPO_CUDA_CHECK(cudnnFindConvolutionBackwardDataAlgorithmEx(
          handle_, pl->w, w, pl->y, y, pl->conv, pl->x, out_x,
          CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &n, r, search_ws.get(), cap));
      chosen = pick(r, n, precision_, cap);
      if (chosen < 0) {
        TEMPO_CUDA_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(
            handle_, pl->w, pl->y, pl->conv, pl->x, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &n, r));
        chosen = pick(r, n, precision_, cap);
      }
      if (chosen >= 0) {
        pl->algo = r[chosen].algo;
        math = r[chosen].mathType;
      }
      break;
    }
    case Kind::kBackwardWeights: {
      cudnnConvolutionBwdFilterAlgoPerf_t r[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
      TEMPO_CUDA_CHECK(cudnnFindConvolutionBackwardFilterAlgorithmEx(
          handle_, pl->x, x, pl->y, y, pl->conv, pl->w, out_w,
          CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &n, r, search_ws.get(), cap));
      chosen = pick(r, n, precision_, cap);
      if (chosen < 0) {
        TEMPO_CUDA_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(
            handle_, pl->x, pl->y, pl->conv, pl->w, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &n,
            r));
        chosen = pick(r, n, precision_, cap);
      }
      if (chosen >= 0) {
        pl->algo = r[chosen].algo;
        math = r[chosen].mathType;
      }
      break;
    }
  }
  if (chosen < 0)
    throw std::runtime_error("cuDNN offers no " + std::string(precision_name(precision_)) +
                             " algorithm for this convolution (input " + xs.to_string() +
                             ", filter " + ws.to_string() +
                             ") that sums exact products within the workspace cap: FFT and "
                             "Winograd are excluded, their rounding is not what the master's "
                             "integrity checks bound");
  // fp32 must never run a tensor-core kernel: pin FMA math whatever the search reported.
  TEMPO_CUDA_CHECK(cudnnSetConvolutionMathType(
      pl->conv, precision_ == Precision::kFp32 ? CUDNN_FMA_MATH : math));
  switch (kind) {
    case Kind::kForward:
      TEMPO_CUDA_CHECK(cudnnGetConvolutionForwardWorkspaceSize(
          handle_, pl->x, pl->w, pl->conv, pl->y, static_cast<cudnnConvolutionFwdAlgo_t>(pl->algo),
          &pl->workspace));
      break;
    case Kind::kBackwardData:
      TEMPO_CUDA_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(
          handle_, pl->w, pl->y, pl->conv, pl->x,
          static_cast<cudnnConvolutionBwdDataAlgo_t>(pl->algo), &pl->workspace));
      break;
    case Kind::kBackwardWeights:
      TEMPO_CUDA_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(
          handle_, pl->x, pl->y, pl->conv, pl->w,
          static_cast<cudnnConvolutionBwdFilterAlgo_t>(pl->algo), &pl->workspace));
      break;
  }
  return *plans_.emplace(key, std::move(pl)).first->second;
}

void CudnnConv::forward(const float* x, const Shape& xs, const float* w, const Shape& ws,
                        const protocol::ConvParams& p, float* y, const Shape& ys) {
  Plan& pl = plan(Kind::kForward, xs, ws, ys, p, x, w, y);
  const float one = 1.0f, zero = 0.0f;
  void* wsp = workspace(pl.workspace);
  TEMPO_CUDA_CHECK(cudnnConvolutionForward(handle_, &one, pl.x, x, pl.w, w, pl.conv,
                                           static_cast<cudnnConvolutionFwdAlgo_t>(pl.algo), wsp,
                                           pl.workspace, &zero, pl.y, y));
}

void CudnnConv::backward_data(const float* dy, const Shape& dys, const float* w, const Shape& ws,
                              const protocol::ConvParams& p, float* dx, const Shape& xs) {
  Plan& pl = plan(Kind::kBackwardData, xs, ws, dys, p, dx, w, dy);
  const float one = 1.0f, zero = 0.0f;
  void* wsp = workspace(pl.workspace);
  TEMPO_CUDA_CHECK(cudnnConvolutionBackwardData(handle_, &one, pl.w, w, pl.y, dy, pl.conv,
                                                static_cast<cudnnConvolutionBwdDataAlgo_t>(pl.algo),
                                                wsp, pl.workspace, &zero, pl.x, dx));
}

void CudnnConv::backward_weights(const float* x, const Shape& xs, const float* dy, const Shape& dys,
                                 const protocol::ConvParams& p, float* dw, const Shape& ws) {
  Plan& pl = plan(Kind::kBackwardWeights, xs, ws, dys, p, x, dw, dy);
  const float one = 1.0f, zero = 0.0f;
  void* wsp = workspace(pl.workspace);
  TEMPO_CUDA_CHECK(cudnnConvolutionBackwardFilter(
      handle_, &one, pl.x, x, pl.y, dy, pl.conv,
      static_cast<cudnnConvolutionBwdFilterAlgo_t>(pl.algo), wsp, pl.workspace, &zero, pl.w, dw));
}

}  // namespace tempo::worker::cuda
