#include "master/crypto/dim_key.h"

#include <cmath>
#include <numeric>

namespace tempo::crypto {

bool DimKey::is_valid() const {
  const size_t n = perm.size();
  if (inv_perm.size() != n || scale.size() != n || inv_scale.size() != n) return false;
  std::vector<char> seen(n, 0);
  for (size_t i = 0; i < n; ++i) {
    const int32_t p = perm[i];
    if (p < 0 || static_cast<size_t>(p) >= n || seen[static_cast<size_t>(p)]) return false;
    seen[static_cast<size_t>(p)] = 1;
    if (inv_perm[static_cast<size_t>(p)] != static_cast<int32_t>(i)) return false;
    if (!std::isfinite(scale[i]) || scale[i] == 0.0f || !std::isfinite(inv_scale[i])) return false;
    if (std::abs(scale[i] * inv_scale[i] - 1.0f) > 1e-6f) return false;
  }
  return true;
}

DimKey DimKey::identity(int64_t n) {
  DimKey k;
  k.perm.resize(static_cast<size_t>(n));
  std::iota(k.perm.begin(), k.perm.end(), 0);
  k.inv_perm = k.perm;
  k.scale.assign(static_cast<size_t>(n), 1.0f);
  k.inv_scale = k.scale;
  return k;
}

}  // namespace tempo::crypto
