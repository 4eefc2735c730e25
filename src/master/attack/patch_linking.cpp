#include "master/attack/patch_linking.h"

#include <algorithm>
#include <bit>
#include <stdexcept>
#include <unordered_map>
#include <vector>

namespace tempo::attack {

std::map<std::pair<int64_t, int64_t>, int> link_rows_by_significand(const BlindedTensor& x,
                                                                    int64_t max_copies) {
  if (x.rank() != 2)
    throw std::invalid_argument("link_rows_by_significand: a matrix, not " + x.shape().to_string());
  const int64_t rows = x.dim(0), cols = x.dim(1);
  std::unordered_map<uint32_t, std::vector<int64_t>> holders;
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) {
      const float v = x.data()[i * cols + j];
      if (v != 0.0f) holders[std::bit_cast<uint32_t>(v) & 0x7FFFFFU].push_back(i);
    }
  std::map<std::pair<int64_t, int64_t>, int> links;
  for (const auto& [significand, at] : holders) {
    if (at.size() < 2 || static_cast<int64_t>(at.size()) > max_copies) continue;
    for (size_t a = 0; a < at.size(); ++a)
      for (size_t b = a + 1; b < at.size(); ++b)
        if (at[a] != at[b]) ++links[{std::min(at[a], at[b]), std::max(at[a], at[b])}];
  }
  return links;
}

}  // namespace tempo::attack
