// The per-layer placement and key-space table of `--privacy-report`.
#pragma once

#include <vector>

#include "cli/progress.h"
#include "master/nn/module.h"
#include "master/offload/offload_policy.h"

namespace tempo::cli {

/// Prints, for each product layer, where it runs and (when offloaded) the key-space bits of each
/// tensor a worker receives for it, measured on one forward of `input_shape`.
void print_privacy_report(nn::Module& model, const Shape& input_shape,
                          const std::vector<offload::PlacedLayer>& placement,
                          const offload::OffloadPolicy& policy, Progress& progress);

}  // namespace tempo::cli
