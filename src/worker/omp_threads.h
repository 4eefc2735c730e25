// Scoped OpenMP thread count for the calling thread.
#pragma once

#include <omp.h>

namespace tempo::worker {

/// Sets omp_set_num_threads() for the calling thread while alive (threads <= 0: leave as is).
/// OpenMP's thread count is a per-thread setting, and OpenBLAS (OpenMP build) and oneDNN (OpenMP
/// runtime) both follow omp_get_max_threads() of the caller, so this bounds all three without
/// touching the settings of other threads (e.g. the master's).
class ScopedOmpThreads {
 public:
  explicit ScopedOmpThreads(int threads) : previous_(omp_get_max_threads()), set_(threads > 0) {
    if (set_) omp_set_num_threads(threads);
  }
  ~ScopedOmpThreads() {
    if (set_) omp_set_num_threads(previous_);
  }
  ScopedOmpThreads(const ScopedOmpThreads&) = delete;
  ScopedOmpThreads& operator=(const ScopedOmpThreads&) = delete;

 private:
  int previous_;
  bool set_;
};

}  // namespace tempo::worker
