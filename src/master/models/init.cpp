#include "master/models/init.h"

#include <cmath>

namespace tempo::models {

void trunc_normal(Tensor& t, float std, Rng& rng) {
  for (int64_t i = 0; i < t.numel(); ++i) {
    double z = rng.normal();
    while (std::abs(z) > 2.0) z = rng.normal();
    t[i] = static_cast<float>(z) * std;
  }
}

void uniform(Tensor& t, float bound, Rng& rng) {
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = rng.uniform(-bound, bound);
}

}  // namespace tempo::models
