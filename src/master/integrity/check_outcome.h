// What one integrity check of one offloaded result found.
#pragma once

#include <string>

namespace tempo::integrity {

/// The verdict of a check. `worst_ratio` is the largest |computed discrepancy| / tolerance over
/// every checked value and round: below 1 passes, above 1 fails; +infinity for a result of the
/// wrong shape or with a non-finite value.
struct CheckOutcome {
  bool passed = true;
  double worst_ratio = 0.0;
  std::string reason;  ///< when failed: where and by how much (for the log)
};

}  // namespace tempo::integrity
