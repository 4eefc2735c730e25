#include "worker/cpu_backend.h"

#include <dnnl.h>
#include <omp.h>

#include <stdexcept>
#include <string>
#include <thread>

#include "worker/omp_threads.h"

namespace tempo::worker {

namespace {

// Row-major C[m,n] = op(A)·op(B) with dense leading dimensions, through oneDNN's sgemm (faster
// than OpenBLAS here: docs/notes/gemm-library.md). Sizes were validated to be positive.
void sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, const float* b,
           float* c) {
  const dnnl_status_t st = dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, 1.0f, a, ta ? m : k,
                                      b, tb ? k : n, 0.0f, c, n);
  if (st != dnnl_success)
    throw std::runtime_error("oneDNN sgemm failed with status " + std::to_string(st));
}

std::string cpu_description(int threads) {
  const int n = threads > 0 ? threads : omp_get_max_threads();
  return "CPU, " + std::to_string(n) + " threads of " +
         std::to_string(std::thread::hardware_concurrency()) +
         " hardware threads (oneDNN sgemm and conv)";
}

}  // namespace

CpuBackend::CpuBackend(int threads) : threads_(threads), device_(cpu_description(threads)) {}

BlindedTensor CpuBackend::matmul(const BlindedTensor& a, const BlindedTensor& b, bool trans_a,
                                 bool trans_b) {
  ScopedOmpThreads scope(threads_);
  const int64_t m = trans_a ? a.dim(1) : a.dim(0), k = trans_a ? a.dim(0) : a.dim(1);
  const int64_t n = trans_b ? b.dim(0) : b.dim(1);
  BlindedTensor c = BlindedTensor::allocate({m, n});
  sgemm(trans_a, trans_b, m, n, k, a.data(), b.data(), c.mutable_data());
  return c;
}

BlindedTensor CpuBackend::batched_matmul(const BlindedTensor& a, const BlindedTensor& b,
                                         bool trans_a, bool trans_b) {
  ScopedOmpThreads scope(threads_);
  const int64_t batch = a.dim(0);
  const int64_t m = trans_a ? a.dim(2) : a.dim(1), k = trans_a ? a.dim(1) : a.dim(2);
  const int64_t n = trans_b ? b.dim(1) : b.dim(2);
  BlindedTensor c = BlindedTensor::allocate({batch, m, n});
  const int64_t sa = m * k, sb = k * n, sc = m * n;
  const float* pa = a.data();
  const float* pb = b.data();
  float* pc = c.mutable_data();
  // Enough independent products to fill the cores, or products too small for a threaded GEMM
  // (attention heads): one single-threaded GEMM per item (a GEMM inside an OpenMP region runs
  // single-threaded with the OpenMP build of OpenBLAS). Otherwise threads split each GEMM.
  constexpr int64_t kSmallGemmMacs = int64_t{1} << 21;
  if (batch >= omp_get_max_threads() || m * n * k <= kSmallGemmMacs) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < batch; ++i)
      sgemm(trans_a, trans_b, m, n, k, pa + i * sa, pb + i * sb, pc + i * sc);
  } else {
    for (int64_t i = 0; i < batch; ++i)
      sgemm(trans_a, trans_b, m, n, k, pa + i * sa, pb + i * sb, pc + i * sc);
  }
  return c;
}

BlindedTensor CpuBackend::conv_forward(const BlindedTensor& x, const BlindedTensor& w,
                                       const protocol::ConvParams& p) {
  ScopedOmpThreads scope(threads_);
  const int64_t oh = (x.dim(2) + 2 * p.pad_h - w.dim(2)) / p.stride_h + 1;
  const int64_t ow = (x.dim(3) + 2 * p.pad_w - w.dim(3)) / p.stride_w + 1;
  BlindedTensor y = BlindedTensor::allocate({x.dim(0), w.dim(0), oh, ow});
  conv_.forward(x.data(), x.shape(), w.data(), w.shape(), p, y.mutable_data());
  return y;
}

BlindedTensor CpuBackend::conv_backward_data(const BlindedTensor& dy, const BlindedTensor& w,
                                             const protocol::ConvParams& p, const Shape& x_shape) {
  ScopedOmpThreads scope(threads_);
  BlindedTensor dx = BlindedTensor::allocate(x_shape);
  conv_.backward_data(dy.data(), w.data(), w.shape(), p, dx.mutable_data(), x_shape);
  return dx;
}

BlindedTensor CpuBackend::conv_backward_weights(const BlindedTensor& x, const BlindedTensor& dy,
                                                const protocol::ConvParams& p,
                                                const Shape& w_shape) {
  ScopedOmpThreads scope(threads_);
  BlindedTensor dw = BlindedTensor::allocate(w_shape);
  conv_.backward_weights(x.data(), x.shape(), dy.data(), p, dw.mutable_data(), w_shape);
  return dw;
}

}  // namespace tempo::worker
