// Secret random ±1 vectors for the integrity checks.
#pragma once

#include <cstdint>
#include <vector>

#include "master/crypto/csprng.h"

namespace tempo::integrity {

/// `count` independent uniform ±1 values (as doubles) from the CSPRNG. The worker never sees
/// them, so its result cannot depend on them, whenever they are drawn (docs/integrity.md: why
/// that matters).
std::vector<double> random_signs(crypto::Csprng& rng, int64_t count);

}  // namespace tempo::integrity
