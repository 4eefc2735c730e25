// Splitting a batch into shards along its first dimension, and joining the results.
#pragma once

#include <cstdint>
#include <vector>

#include "master/core/tensor.h"

namespace tempo::offload {

/// A copy of rows [begin, end) of the first dimension (samples of an NCHW batch, rows of a
/// matrix). Throws std::out_of_range for a range outside the tensor.
Tensor rows_of(const Tensor& t, int64_t begin, int64_t end);

/// The pieces stacked along the first dimension (their other dimensions must agree).
Tensor concat_rows(const std::vector<Tensor>& pieces);

}  // namespace tempo::offload
