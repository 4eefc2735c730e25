// make_backend(): the one place that knows every backend, including whether CUDA is built in.
#include <cctype>
#include <stdexcept>

#include "worker/backend.h"
#include "worker/cpu_backend.h"

namespace tempo::worker {

// Defined in tempo_worker_cuda (src/worker/cuda/cuda_backend.cpp). Weak references: only the
// programs that need the GPU link that library (`tempo` and cuda_backend_test, whole-archive),
// so that the other test programs do not load cuBLAS and cuDNN (~0.7 s per process start);
// elsewhere these are null and "cuda" is refused with a clear message.
[[gnu::weak]] std::unique_ptr<Backend> make_cuda_backend(int device, Precision precision,
                                                         int copy_threads);
[[gnu::weak]] std::string cuda_device_problem(int device);

namespace {

#ifdef TEMPO_CUDA_BUILT
constexpr const char* kNoCudaBuild =
    "this program was linked without the CUDA backend (link tempo_worker_cuda, as `tempo` "
    "does; docs/gpu.md)";
#else
constexpr const char* kNoCudaBuild =
    "this build has no CUDA backend: configure with -DTEMPO_CUDA=ON (needs the CUDA toolkit and "
    "cuDNN, docs/gpu.md)";
#endif

/// "cuda" -> 0, "cuda:N" -> N; -1 when `name` is not a cuda backend name at all.
int parse_cuda_device(const std::string& name) {
  if (name == "cuda") return 0;
  if (!name.starts_with("cuda:")) return -1;
  const std::string n = name.substr(5);
  if (n.empty() || n.size() > 4) return -1;
  for (char c : n)
    if (!std::isdigit(static_cast<unsigned char>(c))) return -1;
  return std::stoi(n);
}

}  // namespace

Precision parse_precision(const std::string& name) {
  if (name == "fp32") return Precision::kFp32;
  if (name == "tf32") return Precision::kTf32;
  throw std::invalid_argument("unknown precision '" + name + "' (available: fp32, tf32)");
}

const char* precision_name(Precision p) { return p == Precision::kTf32 ? "tf32" : "fp32"; }

std::unique_ptr<Backend> make_backend(const std::string& name, int threads, Precision precision) {
  if (name == "cpu") {
    if (precision != Precision::kFp32)
      throw std::invalid_argument(std::string("the cpu backend computes in fp32 only, not ") +
                                  precision_name(precision) + " (tf32 needs a cuda backend)");
    return std::make_unique<CpuBackend>(threads);
  }
  const int device = parse_cuda_device(name);
  if (device < 0)
    throw std::invalid_argument("unknown worker backend '" + name +
                                "' (available: cpu, cuda, cuda:N)");
  if (make_cuda_backend == nullptr) throw std::invalid_argument(kNoCudaBuild);
  return make_cuda_backend(device, precision, threads);
}

std::string cuda_unavailable_reason() {
  return cuda_device_problem == nullptr ? kNoCudaBuild : cuda_device_problem(0);
}

}  // namespace tempo::worker
