// The check vectors: independent uniform ±1 entries from the CSPRNG.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "master/crypto/csprng.h"
#include "master/integrity/random_signs.h"

namespace tempo {
namespace {

TEST(RandomSigns, EntriesArePlusOrMinusOneFairAndIndependent) {
  crypto::Csprng rng;
  // Lengths that end inside a 32-entry draw, and one long run for the statistics.
  for (int64_t count : {1, 31, 33}) {
    const std::vector<double> v = integrity::random_signs(rng, count);
    ASSERT_EQ(static_cast<int64_t>(v.size()), count);
    for (double e : v) EXPECT_TRUE(e == 1.0 || e == -1.0) << e;
  }
  // Per position within a draw (bit j of each 32-bit word): 4000 draws, so a fair sign's count
  // of +1 lies within 2000 ± 6 sigma (sigma = 31.6) except with probability ~2e-9 per position.
  const int64_t draws = 4000;
  const std::vector<double> v = integrity::random_signs(rng, 32 * draws);
  for (int j = 0; j < 32; ++j) {
    int64_t plus = 0;
    for (int64_t d = 0; d < draws; ++d) {
      const double e = v[static_cast<size_t>(32 * d + j)];
      ASSERT_TRUE(e == 1.0 || e == -1.0) << e;
      plus += e > 0 ? 1 : 0;
    }
    EXPECT_NEAR(static_cast<double>(plus), 2000.0, 6 * std::sqrt(1000.0)) << "position " << j;
  }
  // Entries up to a draw apart are independent: equal signs about half the time at every lag
  // (a draw's bits reused, or a word repeated, would show at some lag).
  for (int lag = 1; lag <= 32; ++lag) {
    int64_t equal = 0;
    for (size_t i = static_cast<size_t>(lag); i < v.size(); ++i)
      equal += v[i] == v[i - static_cast<size_t>(lag)] ? 1 : 0;
    const double pairs = static_cast<double>(v.size()) - lag;
    EXPECT_NEAR(static_cast<double>(equal), pairs / 2, 6 * std::sqrt(pairs / 4)) << "lag " << lag;
  }
}

}  // namespace
}  // namespace tempo
