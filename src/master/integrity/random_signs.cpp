#include "master/integrity/random_signs.h"

namespace tempo::integrity {

std::vector<double> random_signs(crypto::Csprng& rng, int64_t count) {
  std::vector<double> v(static_cast<size_t>(count));
  double* out = v.data();
  // Bit j of each 32-bit draw gives entry j: +1 when set, -1 when clear. Branch-free, so that
  // the 32 entries of a draw are converted as vectors (attention checks draw 16K per product).
  for (int64_t i = 0; i < count; i += 32) {
    const uint32_t bits = rng.next_u32();
    const int64_t n = count - i < 32 ? count - i : 32;
    for (int64_t j = 0; j < n; ++j)
      out[i + j] = static_cast<double>(static_cast<int32_t>((bits >> j) & 1u) * 2 - 1);
  }
  return v;
}

}  // namespace tempo::integrity
