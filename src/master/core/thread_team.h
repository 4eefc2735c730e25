// Runs work split by hand over an OpenMP team, or on the calling thread alone.
#pragma once

#include <omp.h>

#include <cstdint>

namespace tempo {

/// With `threaded`, runs body(thread, threads) once on each thread of a new OpenMP team (the body
/// takes items thread, thread + threads, ...); otherwise runs body(0, 1) on the calling thread.
/// Never an inactive `omp parallel if (false)` region: OpenMP code that the body calls (a
/// threaded kernel, oneDNN) would then start a nested team, which libgomp creates afresh each
/// time (~90 us a region against ~11 us, measured on the 2-core development VM).
template <class Body>
void run_on_team(bool threaded, const Body& body) {
  if (threaded) {
#pragma omp parallel
    body(static_cast<int64_t>(omp_get_thread_num()), static_cast<int64_t>(omp_get_num_threads()));
  } else {
    body(int64_t{0}, int64_t{1});
  }
}

}  // namespace tempo
