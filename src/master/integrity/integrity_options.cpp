#include "master/integrity/integrity_options.h"

#include <stdexcept>

namespace tempo::integrity {

FailureAction parse_failure_action(const std::string& name) {
  if (name == "retry") return FailureAction::kRetry;
  if (name == "local") return FailureAction::kLocal;
  if (name == "abort") return FailureAction::kAbort;
  throw std::invalid_argument("unknown integrity failure action '" + name +
                              "' (valid: retry, local, abort)");
}

const char* to_string(FailureAction a) {
  switch (a) {
    case FailureAction::kRetry:
      return "retry";
    case FailureAction::kLocal:
      return "local";
    case FailureAction::kAbort:
      return "abort";
  }
  return "?";
}

}  // namespace tempo::integrity
