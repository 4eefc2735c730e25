// The entry point of the CUDA backend's shared library (libtempo_cuda.so), which
// make_backend() loads on demand (backend_factory.cpp). No CUDA header here.
#pragma once

#include <memory>
#include <string>

#include "worker/backend.h"

namespace tempo::worker {

/// What the library offers, as plain function pointers behind one C symbol.
struct CudaModule {
  /// A CudaBackend on cuda:`device` as a Backend; throws when the device cannot be used.
  std::unique_ptr<Backend> (*make_backend)(int device, Precision precision, int copy_threads);
  /// "" when cuda:`device` can be opened, else why not.
  std::string (*device_problem)(int device);
};

/// extern "C" const CudaModule* tempo_cuda_module(): the one symbol the loader looks up.
inline constexpr const char* kCudaModuleEntry = "tempo_cuda_module";

}  // namespace tempo::worker
