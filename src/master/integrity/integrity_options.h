// What the master checks and what it does when a check fails (PROTOCOL.md sections 5 and 7).
#pragma once

#include <string>

#include "master/integrity/error_bound.h"

namespace tempo::integrity {

/// What happens to an offloaded result that fails its check. It is never used in any case.
enum class FailureAction {
  /// Re-send the operation to the worker once (operands re-uploaded, fresh check vectors); if
  /// that fails too, compute it in the TEE and quarantine the worker for the rest of the run.
  kRetry,
  /// Compute the operation in the TEE at once; the worker stays in use (for a flaky worker).
  kLocal,
  /// Throw IntegrityError: stop the run.
  kAbort,
};
FailureAction parse_failure_action(const std::string& name);  ///< "retry" | "local" | "abort"
const char* to_string(FailureAction a);

struct IntegrityOptions {
  /// Independent check rounds per result; 0 disables checking (results are used unchecked).
  /// The default 1 is the measured choice of docs/integrity.md (overhead table).
  int rounds = 1;
  FailureAction on_failure = FailureAction::kRetry;
  /// The arithmetic honest workers may use; sets the tolerance.
  Precision precision = Precision::kFp32;
};

}  // namespace tempo::integrity
