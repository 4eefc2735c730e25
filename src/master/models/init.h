// Weight initialisers used by the model builders (beyond the layers' own defaults).
#pragma once

#include "master/core/random.h"
#include "master/core/tensor.h"

namespace tempo::models {

/// Normal(0, std²) truncated to [-2·std, 2·std] by rejection (timm/JAX-style truncated normal).
void trunc_normal(Tensor& t, float std, Rng& rng);

/// U(-bound, bound): PyTorch's default for Linear and Conv2d uses bound = 1/sqrt(fan_in).
void uniform(Tensor& t, float bound, Rng& rng);

}  // namespace tempo::models
