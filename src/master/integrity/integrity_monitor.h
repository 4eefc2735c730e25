// Counts, logs and acts on the integrity checks of one offload engine.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "master/integrity/check_outcome.h"
#include "master/integrity/integrity_options.h"

namespace tempo::integrity {

/// Thrown under FailureAction::kAbort, and when a check fails with nowhere left to go.
class IntegrityError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// One failed check, as logged.
struct IntegrityEvent {
  std::string layer;
  std::string operation;  ///< "forward product", "backward-data product", ...
  int attempt = 1;        ///< 1: the first answer; 2: the answer to the re-sent request
  double ratio = 0.0;     ///< worst |discrepancy| / tolerance (inf: wrong shape, non-finite)
  std::string reason;
  std::string action;  ///< "retry", "local", "local+quarantine", "abort"
};

/// Thread-safe counters and event log; decides quarantine. Every event goes to the log sink
/// (stderr by default) as one line naming the layer, the operation and the error relative to
/// the tolerance.
class IntegrityMonitor {
 public:
  explicit IntegrityMonitor(IntegrityOptions options = {});

  const IntegrityOptions& options() const { return options_; }
  bool enabled() const { return options_.rounds > 0; }

  /// A result passed its check.
  void passed();
  /// A result failed its check; records and logs the event (with the action taken).
  void failed(IntegrityEvent event);
  /// An operation computed in the TEE instead (after a failed check, or while quarantined).
  void computed_locally() { ++local_; }
  /// A product computed in the TEE because no worker was live (--fallback local).
  void computed_without_worker() { ++no_worker_; }
  int64_t computed_without_worker_count() const { return no_worker_.load(); }
  void retried() { ++retries_; }
  /// Adds time the master spent checking (preparing and verifying), for the overhead report.
  void add_check_time(int64_t ns) { check_ns_ += ns; }
  double check_seconds() const { return static_cast<double>(check_ns_.load()) * 1e-9; }

  /// After a failed retry: the worker is not used again (logged once).
  /// Logs that `worker` will get no further request (the pool stops using it).
  void quarantine(const std::string& worker, const std::string& why);
  bool quarantined() const { return quarantined_.load(); }

  int64_t checks() const { return checks_.load(); }
  int64_t failures() const { return failures_.load(); }
  int64_t retries() const { return retries_.load(); }
  int64_t local_fallbacks() const { return local_.load(); }
  std::vector<IntegrityEvent> events() const;

  /// Where log lines go (default: stderr).
  void set_log(std::function<void(const std::string&)> sink);
  /// One line to the log sink (also used by the offload engine for worker events).
  void log(const std::string& line);

  /// {"verify_rounds", "on_failure", "precision", "integrity_checks", "integrity_failures",
  ///  "integrity_retries", "integrity_local_fallbacks", "worker_quarantined",
  ///  "products_without_worker", "integrity_check_seconds"}
  nlohmann::json to_json() const;

 private:
  IntegrityOptions options_;
  std::atomic<int64_t> checks_{0}, failures_{0}, retries_{0}, local_{0}, check_ns_{0};
  std::atomic<bool> quarantined_{false};
  std::atomic<int64_t> no_worker_{0};
  mutable std::mutex mu_;
  std::vector<IntegrityEvent> events_;
  std::function<void(const std::string&)> sink_;
};

}  // namespace tempo::integrity
