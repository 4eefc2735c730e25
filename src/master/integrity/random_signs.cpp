#include "master/integrity/random_signs.h"

namespace tempo::integrity {

std::vector<double> random_signs(crypto::Csprng& rng, int64_t count) {
  std::vector<double> v(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; i += 32) {
    uint32_t bits = rng.next_u32();
    for (int64_t j = i; j < count && j < i + 32; ++j, bits >>= 1)
      v[static_cast<size_t>(j)] = (bits & 1u) ? 1.0 : -1.0;
  }
  return v;
}

}  // namespace tempo::integrity
