// Linking the rows of a patch-mode request by the significands they share (docs/privacy.md,
// "Patch mode and significands"): what a worker can learn about the positions of X'.
#pragma once

#include <cstdint>
#include <map>
#include <utility>

#include "common/blinded_tensor.h"

namespace tempo::attack {

/// Pairs of rows (i < j) of a blinded patch matrix X' [M, K] that hold a non-zero entry with the
/// same 23 significand bits, each with the number of such entries they share. im2col copies
/// every input value into up to kh·kw patches; under power-of-two scales each copy keeps the
/// value's significand, so these pairs are the overlapping patches. A significand held by more
/// than `max_copies` entries (kh·kw) is not one value's copies but a coincidence: skipped.
std::map<std::pair<int64_t, int64_t>, int> link_rows_by_significand(const BlindedTensor& x,
                                                                    int64_t max_copies);

}  // namespace tempo::attack
