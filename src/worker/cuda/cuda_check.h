// Turns CUDA runtime, cuBLAS and cuDNN status codes into exceptions with readable messages.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <stdexcept>
#include <string>

namespace tempo::worker::cuda {

inline void check(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return;
  cudaGetLastError();  // clear a sticky-free error so the next call starts clean
  throw std::runtime_error(std::string(what) + " failed: " + cudaGetErrorName(e) + " (" +
                           cudaGetErrorString(e) + ")");
}

inline void check(cublasStatus_t s, const char* what) {
  if (s == CUBLAS_STATUS_SUCCESS) return;
  throw std::runtime_error(std::string(what) + " failed: " + cublasGetStatusName(s) + " (" +
                           cublasGetStatusString(s) + ")");
}

inline void check(cudnnStatus_t s, const char* what) {
  if (s == CUDNN_STATUS_SUCCESS) return;
  char detail[512] = {};
  cudnnGetLastErrorString(detail, sizeof detail);
  throw std::runtime_error(std::string(what) + " failed: " + cudnnGetErrorString(s) +
                           (detail[0] ? std::string(" (") + detail + ")" : std::string()));
}

}  // namespace tempo::worker::cuda

/// Throws std::runtime_error naming the failed call and the library's message.
#define TEMPO_CUDA_CHECK(expr) ::tempo::worker::cuda::check((expr), #expr)
