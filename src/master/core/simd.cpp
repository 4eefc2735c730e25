#include "master/core/simd.h"

#include <cstdlib>
#include <cstring>

namespace tempo::simd {

bool cpu_has_avx512() noexcept {
  // Also safe from static initialisers that run before libgcc's own CPU detection.
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw");
}

namespace {
bool detect() noexcept {
  // Read once, at start-up, before any thread exists.
  const char* forced = std::getenv("TEMPO_SIMD");  // NOLINT(concurrency-mt-unsafe)
  if (forced != nullptr && std::strcmp(forced, "avx2") == 0) return false;
  return cpu_has_avx512();
}
}  // namespace

namespace detail {
// Zero-initialised (false: the portable kernels) until this initialiser runs.
std::atomic<bool> g_avx512{detect()};
}  // namespace detail

bool use_avx512(bool wanted) {
  return detail::g_avx512.exchange(wanted && cpu_has_avx512(), std::memory_order_relaxed);
}

const char* level_name() { return avx512() ? "avx512" : "avx2"; }

}  // namespace tempo::simd
