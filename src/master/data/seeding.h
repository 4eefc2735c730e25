// Independent, reproducible seeds for the data pipeline's random streams.
#pragma once

#include <cstdint>

namespace tempo::data {

/// A seed for the stream identified by (seed, a, b): a pure function, well mixed (splitmix64
/// finaliser per word), so nearby tuples such as epoch 1 and epoch 2 give unrelated streams.
/// Deriving every stream this way (instead of advancing one generator) makes each epoch order,
/// augmentation draw and synthetic sample independent of how many were drawn before it.
inline uint64_t derive_seed(uint64_t seed, uint64_t a, uint64_t b = 0) {
  auto mix = [](uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  };
  return mix(mix(mix(seed) ^ a) ^ (b * 0xd6e8feb86659fd93ULL + 1));
}

}  // namespace tempo::data
