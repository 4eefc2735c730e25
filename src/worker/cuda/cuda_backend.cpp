#include "worker/cuda/cuda_backend.h"
#include "worker/cuda/cuda_module.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <unordered_map>
#include <utility>

#include "common/aligned_buffer.h"
#include "worker/cuda/cuda_check.h"
#include "worker/cuda/cudnn_conv.h"
#include "worker/cuda/device_pool.h"
#include "worker/cuda/pinned_staging.h"

namespace tempo::worker {

using cuda::CudnnConv;
using cuda::DevicePool;
using cuda::PinnedStaging;

std::string cuda_device_problem(int device) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return std::string("no CUDA device: cudaGetDeviceCount failed with ") + cudaGetErrorName(e) +
           " (" + cudaGetErrorString(e) + ")";
  }
  if (n == 0) return "no CUDA device: cudaGetDeviceCount found none";
  if (device < 0 || device >= n)
    return "no CUDA device cuda:" + std::to_string(device) + ": cudaGetDeviceCount found " +
           std::to_string(n) + " (cuda:0 to cuda:" + std::to_string(n - 1) + ")";
  return "";
}

namespace {

std::atomic<int> page_locked_device{0};  // the device of the backend that installed them

void* allocate_page_locked(size_t bytes) {
  // The allocating thread may be any (a master thread): make it use the backend's device, so that
  // no context is created on another GPU. Backend threads set their device before each op.
  if (int current = 0; cudaGetDevice(&current) != cudaSuccess || current != page_locked_device)
    cudaSetDevice(page_locked_device);
  void* p = nullptr;
  if (cudaHostAlloc(&p, bytes, cudaHostAllocPortable) != cudaSuccess) {
    cudaGetLastError();  // not sticky: this block comes from the heap instead
    return nullptr;
  }
  return p;
}

void release_page_locked(void* p) { cudaFreeHost(p); }

/// From the first CUDA backend on, the large tensors of this process (the master's too, with the
/// embedded worker) live in page-locked memory, which the DMA engines read and write in place:
/// PinnedStaging then skips its staging copy. Each new backend installs the source again if
/// something replaced it. TEMPO_PINNED_HOST=0 turns this off (for A/B runs).
void use_page_locked_tensors(int device) {
  const char* v = std::getenv("TEMPO_PINNED_HOST");  // NOLINT(concurrency-mt-unsafe): read-only
  if (v && std::string(v) == "0") return;
  if (large_block_source().allocate == allocate_page_locked) return;  // kept: its cache stays
  page_locked_device = device;
  set_large_block_source({allocate_page_locked, release_page_locked});
}

std::string version_string(int v) {
  // CUDA runtime/driver: 1000*major + 10*minor; cuBLAS: 10000*major + 100*minor + patch;
  // cuDNN 9: 10000*major + 100*minor + patch.
  return std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100);
}

}  // namespace

struct CudaBackend::Impl {
  int device = 0;
  Precision precision = Precision::kFp32;
  std::string description;
  cudaStream_t copy = nullptr, compute = nullptr;
  cudaEvent_t inputs_ready = nullptr, computed = nullptr;
  // Timing: uploads start and end, compute start and end, download start and end.
  cudaEvent_t t_up = nullptr, t_up_end = nullptr, t_comp = nullptr, t_comp_end = nullptr,
              t_down = nullptr, t_down_end = nullptr;
  cublasHandle_t blas = nullptr;
  cudnnHandle_t dnn = nullptr;
  DevicePool pool;  // before every holder of its blocks: destroyed after them
  std::unique_ptr<PinnedStaging> staging;
  std::unique_ptr<CudnnConv> conv;
  struct Retained {
    int count = 0;
    DevicePool::Block block;  // empty until an op uploads the operand
  };
  std::unordered_map<const float*, Retained> retained;
  CudaBackendStats stats;

  /// An operand on the device: a retained copy, or a temporary that lives as long as this.
  struct OnDevice {
    const float* ptr = nullptr;
    DevicePool::Block temp;
  };

  ~Impl() {
    cudaSetDevice(device);
    if (copy) cudaStreamSynchronize(copy);
    if (compute) cudaStreamSynchronize(compute);
    retained.clear();
    conv.reset();
    staging.reset();
    if (blas) cublasDestroy(blas);
    if (dnn) cudnnDestroy(dnn);
    for (cudaEvent_t e :
         {inputs_ready, computed, t_up, t_up_end, t_comp, t_comp_end, t_down, t_down_end})
      if (e) cudaEventDestroy(e);
    for (cudaStream_t s : {copy, compute})
      if (s) cudaStreamDestroy(s);
  }

  void init(int dev, Precision p, int copy_threads) {
    device = dev;
    precision = p;
    if (auto problem = cuda_device_problem(dev); !problem.empty())
      throw std::runtime_error(problem);
    TEMPO_CUDA_CHECK(cudaSetDevice(dev));
    TEMPO_CUDA_CHECK(cudaStreamCreateWithFlags(&copy, cudaStreamNonBlocking));
    TEMPO_CUDA_CHECK(cudaStreamCreateWithFlags(&compute, cudaStreamNonBlocking));
    TEMPO_CUDA_CHECK(cudaEventCreateWithFlags(&inputs_ready, cudaEventDisableTiming));
    TEMPO_CUDA_CHECK(cudaEventCreateWithFlags(&computed, cudaEventDisableTiming));
    for (cudaEvent_t* e : {&t_up, &t_up_end, &t_comp, &t_comp_end, &t_down, &t_down_end})
      TEMPO_CUDA_CHECK(cudaEventCreate(e));
    TEMPO_CUDA_CHECK(cublasCreate(&blas));
    TEMPO_CUDA_CHECK(cublasSetStream(blas, compute));
    TEMPO_CUDA_CHECK(cublasSetMathMode(
        blas, p == Precision::kTf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
    TEMPO_CUDA_CHECK(cudnnCreate(&dnn));
    TEMPO_CUDA_CHECK(cudnnSetStream(dnn, compute));
    const int threads = copy_threads > 0 ? copy_threads : omp_get_max_threads();
    staging = std::make_unique<PinnedStaging>(std::min(threads, 8));
    use_page_locked_tensors(dev);
    conv = std::make_unique<CudnnConv>(dnn, pool, p);

    cudaDeviceProp prop{};
    TEMPO_CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
    int runtime = 0, driver = 0, blas_version = 0;
    cudaRuntimeGetVersion(&runtime);
    cudaDriverGetVersion(&driver);
    cublasGetVersion(blas, &blas_version);
    char mem[32];
    std::snprintf(mem, sizeof mem, "%.1f GiB", double(prop.totalGlobalMem) / double(1 << 30));
    description = std::string(prop.name) + " (cuda:" + std::to_string(dev) + ", sm_" +
                  std::to_string(prop.major) + std::to_string(prop.minor) + ", " + mem + "), " +
                  precision_name(p) + "; CUDA runtime " + version_string(runtime * 10) +
                  ", driver " + version_string(driver * 10) + ", cuBLAS " +
                  version_string(blas_version) + ", cuDNN " +
                  version_string(static_cast<int>(cudnnGetVersion()));
  }

  OnDevice to_device(const BlindedTensor& t) {
    const auto bytes = static_cast<size_t>(t.bytes());
    auto it = retained.find(t.data());
    if (it != retained.end() && it->second.block && it->second.block.bytes() == bytes) {
      ++stats.retained_hits;
      return {it->second.block.floats(), {}};
    }
    DevicePool::Block b = pool.allocate(bytes);
    staging->upload(b.get(), t.data(), bytes, copy);
    stats.h2d_bytes += bytes;
    ++stats.uploads;
    stats.in_place_bytes = staging->in_place_bytes();
    if (it != retained.end()) {  // the Worker caches it: keep this copy for the backward pass
      if (it->second.block) stats.retained_bytes -= static_cast<int64_t>(it->second.block.bytes());
      it->second.block = std::move(b);
      stats.retained_bytes += static_cast<int64_t>(bytes);
      return {it->second.block.floats(), {}};
    }
    const float* p = b.floats();
    return {p, std::move(b)};
  }

  /// Compute waits for every upload queued so far.
  void inputs_uploaded() {
    TEMPO_CUDA_CHECK(cudaEventRecord(t_up_end, copy));
    TEMPO_CUDA_CHECK(cudaEventRecord(inputs_ready, copy));
    TEMPO_CUDA_CHECK(cudaStreamWaitEvent(compute, inputs_ready, 0));
    TEMPO_CUDA_CHECK(cudaEventRecord(t_comp, compute));
  }

  static double seconds(cudaEvent_t from, cudaEvent_t to) {
    float ms = 0;
    return cudaEventElapsedTime(&ms, from, to) == cudaSuccess ? ms * 1e-3 : 0.0;
  }

  /// Brings `out` back once the compute queued so far is done (chunked, see PinnedStaging).
  BlindedTensor download(const DevicePool::Block& out, const Shape& shape) {
    TEMPO_CUDA_CHECK(cudaEventRecord(t_comp_end, compute));
    TEMPO_CUDA_CHECK(cudaEventRecord(computed, compute));
    TEMPO_CUDA_CHECK(cudaStreamWaitEvent(copy, computed, 0));
    TEMPO_CUDA_CHECK(cudaEventRecord(t_down, copy));
    BlindedTensor r = BlindedTensor::allocate(shape);
    staging->download(r.mutable_data(), out.get(), static_cast<size_t>(r.bytes()), copy);
    stats.d2h_bytes += static_cast<uint64_t>(r.bytes());
    stats.in_place_bytes = staging->in_place_bytes();
    // Everything queued has completed, so an event recorded now marks the end of the last
    // copy-out on the host; then all the events can be read.
    TEMPO_CUDA_CHECK(cudaEventRecord(t_down_end, copy));
    TEMPO_CUDA_CHECK(cudaEventSynchronize(t_down_end));
    stats.h2d_seconds += seconds(t_up, t_up_end);
    stats.compute_seconds += seconds(t_comp, t_comp_end);
    stats.d2h_seconds += seconds(t_down, t_down_end);
    return r;
  }

  /// Runs one op. Blocks are returned to the pool only once nothing queued can touch them: on
  /// success the download waited for everything; on failure we wait here.
  template <typename F>
  BlindedTensor run(F&& op) {
    const auto start = std::chrono::steady_clock::now();
    struct Busy {  // counts failed ops too
      Impl& s;
      std::chrono::steady_clock::time_point start;
      ~Busy() {
        ++s.stats.ops;
        s.stats.busy_seconds +=
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      }
    } busy{*this, start};
    TEMPO_CUDA_CHECK(cudaSetDevice(device));
    try {
      TEMPO_CUDA_CHECK(cudaEventRecord(t_up, copy));
      return op();
    } catch (...) {
      cudaDeviceSynchronize();
      cudaGetLastError();
      throw;
    }
  }
};

CudaBackend::CudaBackend(int device, Precision precision, int copy_threads)
    : impl_(std::make_unique<Impl>()) {
  impl_->init(device, precision, copy_threads);
}

CudaBackend::~CudaBackend() {
  const char* env = std::getenv("TEMPO_CUDA_STATS");
  if (env != nullptr && *env != '\0' && std::string(env) != "0")
    std::fprintf(stderr, "tempo-cuda-stats: %s\n", to_json(stats()).c_str());
}

std::unique_ptr<Backend> make_cuda_backend(int device, Precision precision, int copy_threads) {
  return std::make_unique<CudaBackend>(device, precision, copy_threads);
}

}  // namespace tempo::worker

extern "C" [[gnu::visibility("default")]] const tempo::worker::CudaModule* tempo_cuda_module() {
  static const tempo::worker::CudaModule module{tempo::worker::make_cuda_backend,
                                                tempo::worker::cuda_device_problem};
  return &module;
}

namespace tempo::worker {

std::string to_json(const CudaBackendStats& s) {
  char buf[1024];
  std::snprintf(
      buf, sizeof buf,
      "{\"h2d_bytes\":%llu,\"d2h_bytes\":%llu,\"uploads\":%llu,\"retained_hits\":%llu,"
      "\"retained_bytes\":%lld,\"retained_tensors\":%lld,\"pool_in_use_bytes\":%lld,"
      "\"pool_peak_bytes\":%lld,\"conv_plans\":%llu,\"h2d_seconds\":%.6f,"
      "\"compute_seconds\":%.6f,\"d2h_seconds\":%.6f,\"ops\":%llu,"
      "\"busy_seconds\":%.6f,\"in_place_bytes\":%llu}",
      static_cast<unsigned long long>(s.h2d_bytes), static_cast<unsigned long long>(s.d2h_bytes),
      static_cast<unsigned long long>(s.uploads), static_cast<unsigned long long>(s.retained_hits),
      static_cast<long long>(s.retained_bytes), static_cast<long long>(s.retained_tensors),
      static_cast<long long>(s.pool_in_use_bytes), static_cast<long long>(s.pool_peak_bytes),
      static_cast<unsigned long long>(s.conv_plans), s.h2d_seconds, s.compute_seconds,
      s.d2h_seconds, static_cast<unsigned long long>(s.ops), s.busy_seconds,
      static_cast<unsigned long long>(s.in_place_bytes));
  return buf;
}

std::string CudaBackend::name() const { return "cuda:" + std::to_string(impl_->device); }
std::string CudaBackend::device() const { return impl_->description; }
Precision CudaBackend::precision() const { return impl_->precision; }

BlindedTensor CudaBackend::matmul(const BlindedTensor& a, const BlindedTensor& b, bool trans_a,
                                  bool trans_b) {
  Impl& s = *impl_;
  return s.run([&] {
    const int64_t m = trans_a ? a.dim(1) : a.dim(0), k = trans_a ? a.dim(0) : a.dim(1);
    const int64_t n = trans_b ? b.dim(0) : b.dim(1);
    const Impl::OnDevice da = s.to_device(a), db = s.to_device(b);
    DevicePool::Block dc = s.pool.allocate(static_cast<size_t>(m * n) * sizeof(float));
    s.inputs_uploaded();
    // Row-major C = op(A)·op(B) is column-major C^T = op(B)^T·op(A)^T: cuBLAS reads each
    // row-major operand as its transpose, so swapping A and B needs no transposition pass.
    const float one = 1.0f, zero = 0.0f;
    TEMPO_CUDA_CHECK(
        cublasSgemm(s.blas, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                    trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, static_cast<int>(n), static_cast<int>(m),
                    static_cast<int>(k), &one, db.ptr, static_cast<int>(trans_b ? k : n), da.ptr,
                    static_cast<int>(trans_a ? m : k), &zero, dc.floats(), static_cast<int>(n)));
    return s.download(dc, {m, n});
  });
}

BlindedTensor CudaBackend::batched_matmul(const BlindedTensor& a, const BlindedTensor& b,
                                          bool trans_a, bool trans_b) {
  Impl& s = *impl_;
  return s.run([&] {
    const int64_t batch = a.dim(0);
    const int64_t m = trans_a ? a.dim(2) : a.dim(1), k = trans_a ? a.dim(1) : a.dim(2);
    const int64_t n = trans_b ? b.dim(1) : b.dim(2);
    const Impl::OnDevice da = s.to_device(a), db = s.to_device(b);
    DevicePool::Block dc = s.pool.allocate(static_cast<size_t>(batch * m * n) * sizeof(float));
    s.inputs_uploaded();
    const float one = 1.0f, zero = 0.0f;
    TEMPO_CUDA_CHECK(cublasSgemmStridedBatched(
        s.blas, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
        static_cast<int>(n), static_cast<int>(m), static_cast<int>(k), &one, db.ptr,
        static_cast<int>(trans_b ? k : n), k * n, da.ptr, static_cast<int>(trans_a ? m : k), m * k,
        &zero, dc.floats(), static_cast<int>(n), m * n, static_cast<int>(batch)));
    return s.download(dc, {batch, m, n});
  });
}

BlindedTensor CudaBackend::conv_forward(const BlindedTensor& x, const BlindedTensor& w,
                                        const protocol::ConvParams& p) {
  Impl& s = *impl_;
  return s.run([&] {
    const int64_t oh = (x.dim(2) + 2 * p.pad_h - w.dim(2)) / p.stride_h + 1;
    const int64_t ow = (x.dim(3) + 2 * p.pad_w - w.dim(3)) / p.stride_w + 1;
    const Shape ys = {x.dim(0), w.dim(0), oh, ow};
    const Impl::OnDevice dx = s.to_device(x), dw = s.to_device(w);
    DevicePool::Block dy = s.pool.allocate(static_cast<size_t>(ys.numel()) * sizeof(float));
    s.inputs_uploaded();
    s.conv->forward(dx.ptr, x.shape(), dw.ptr, w.shape(), p, dy.floats(), ys);
    return s.download(dy, ys);
  });
}

BlindedTensor CudaBackend::conv_backward_data(const BlindedTensor& dy, const BlindedTensor& w,
                                              const protocol::ConvParams& p, const Shape& x_shape) {
  Impl& s = *impl_;
  return s.run([&] {
    const Impl::OnDevice ddy = s.to_device(dy), dw = s.to_device(w);
    DevicePool::Block dx = s.pool.allocate(static_cast<size_t>(x_shape.numel()) * sizeof(float));
    s.inputs_uploaded();
    s.conv->backward_data(ddy.ptr, dy.shape(), dw.ptr, w.shape(), p, dx.floats(), x_shape);
    return s.download(dx, x_shape);
  });
}

BlindedTensor CudaBackend::conv_backward_weights(const BlindedTensor& x, const BlindedTensor& dy,
                                                 const protocol::ConvParams& p,
                                                 const Shape& w_shape) {
  Impl& s = *impl_;
  return s.run([&] {
    const Impl::OnDevice dx = s.to_device(x), ddy = s.to_device(dy);
    DevicePool::Block dw = s.pool.allocate(static_cast<size_t>(w_shape.numel()) * sizeof(float));
    s.inputs_uploaded();
    s.conv->backward_weights(dx.ptr, x.shape(), ddy.ptr, dy.shape(), p, dw.floats(), w_shape);
    return s.download(dw, w_shape);
  });
}

void CudaBackend::retain(const BlindedTensor& t) {
  ++impl_->retained[t.data()].count;
  impl_->stats.retained_tensors = static_cast<int64_t>(impl_->retained.size());
}

void CudaBackend::release(const BlindedTensor& t) {
  Impl& s = *impl_;
  auto it = s.retained.find(t.data());
  if (it == s.retained.end() || --it->second.count > 0) return;
  // Every op synchronises before it returns, so no queued work reads the block any more.
  s.stats.retained_bytes -= static_cast<int64_t>(it->second.block.bytes());
  s.retained.erase(it);
  s.stats.retained_tensors = static_cast<int64_t>(s.retained.size());
}

CudaBackendStats CudaBackend::stats() const {
  CudaBackendStats st = impl_->stats;
  st.pool_in_use_bytes = impl_->pool.in_use_bytes();
  st.pool_peak_bytes = impl_->pool.peak_bytes();
  st.conv_plans = impl_->conv ? impl_->conv->plans() : 0;
  return st;
}

}  // namespace tempo::worker
