// make_backend(): the one place that knows every backend, including whether CUDA is built in.
#include <dlfcn.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "worker/backend.h"
#include "worker/cpu_backend.h"
#include "worker/cuda/cuda_module.h"

namespace tempo::worker {

namespace {

#ifdef TEMPO_CUDA_BUILT
constexpr const char* kModuleName = "libtempo_cuda.so";

/// The CUDA backend is a shared library of its own (tempo_worker_cuda, cuda_module.h), loaded on
/// the first request for a cuda backend: a master, and a worker on the cpu backend, never map
/// cuBLAS, cuDNN and the CUDA runtime (~200 MiB resident, ~0.5 s per start). Looked for in
/// $TEMPO_CUDA_MODULE, next to the executable, in ../lib and .. from it (the GPU bundle's and the
/// build tree's layouts), then through the loader's own search (LD_LIBRARY_PATH, or already
/// loaded: cuda_backend_test links it).
const CudaModule* cuda_module(std::string* why) {
  static std::mutex mu;
  static const CudaModule* module = nullptr;
  static std::string error;
  std::lock_guard lock(mu);
  if (module == nullptr && error.empty()) {
    std::vector<std::string> candidates;
    if (const char* env = std::getenv("TEMPO_CUDA_MODULE"); env != nullptr && *env != '\0')
      candidates.emplace_back(env);
    std::error_code ec;
    const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (!ec) {
      const std::filesystem::path dir = exe.parent_path();
      for (const auto& p :
           {dir / kModuleName, dir / ".." / "lib" / kModuleName, dir / ".." / kModuleName})
        candidates.push_back(p.string());
    }
    candidates.emplace_back(kModuleName);
    std::string tried;
    for (const std::string& path : candidates) {
      if (path.find('/') != std::string::npos && !std::filesystem::exists(path, ec)) continue;
      void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (handle == nullptr) {
        const char* e = dlerror();
        tried += "\n  " + path + ": " + (e != nullptr ? e : "cannot load");
        continue;
      }
      auto entry = reinterpret_cast<const CudaModule* (*)()>(dlsym(handle, kCudaModuleEntry));
      if (entry == nullptr) {
        tried += "\n  " + path + ": has no " + kCudaModuleEntry;
        continue;
      }
      module = entry();
      break;
    }
    if (module == nullptr)
      error = std::string("this build's CUDA backend (") + kModuleName +
              ") could not be loaded: it belongs next to the tempo executable, or name it in "
              "TEMPO_CUDA_MODULE (docs/gpu.md)" +
              tried;
  }
  *why = error;
  return module;
}
#else
const CudaModule* cuda_module(std::string* why) {
  *why =
      "this build has no CUDA backend: configure with -DTEMPO_CUDA=ON (needs the CUDA toolkit and "
      "cuDNN, docs/gpu.md)";
  return nullptr;
}
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
  std::string why;
  const CudaModule* cuda = cuda_module(&why);
  if (cuda == nullptr) throw std::invalid_argument(why);
  return cuda->make_backend(device, precision, threads);
}

std::string cuda_unavailable_reason() {
  std::string why;
  const CudaModule* cuda = cuda_module(&why);
  return cuda == nullptr ? why : cuda->device_problem(0);
}

}  // namespace tempo::worker
