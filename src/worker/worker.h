// The untrusted worker: validates and executes protocol requests on blinded tensors.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "common/blinded_tensor.h"
#include "common/worker_protocol.h"
#include "worker/backend.h"
#include "worker/fault_injector.h"
#include "worker/view_recorder.h"

namespace tempo::worker {

/// Resource bounds a worker enforces on every request.
struct WorkerLimits {
  int64_t max_tensor_bytes = int64_t{4} << 30;  ///< any operand, out_shape or result
  int64_t max_cache_bytes = int64_t{16} << 30;  ///< all cached operands together
};

/// Cumulative activity, for benchmarks and health reports.
struct WorkerCounters {
  uint64_t requests = 0;         ///< requests executed, failed ones included
  uint64_t failed = 0;           ///< requests answered with ok=false
  uint64_t bytes_in = 0;         ///< inline operand bytes received
  uint64_t bytes_out = 0;        ///< result bytes returned
  int64_t cache_bytes = 0;       ///< bytes of cached operands now
  int64_t cache_peak_bytes = 0;  ///< largest cache_bytes so far
  int64_t cached_tensors = 0;    ///< number of cached operands now
  uint64_t busy_ns = 0;          ///< time spent inside execute()
  uint64_t faults_injected = 0;  ///< results corrupted on purpose (WorkerOptions::fault)
};

/// How to build a worker (the CLI's worker flags).
struct WorkerOptions {
  std::string backend = "cpu";     ///< "cpu", "cuda", "cuda:N" (make_backend)
  std::string precision = "fp32";  ///< "fp32" | "tf32" (tf32: CUDA backends only)
  int threads = 0;                 ///< compute threads; <= 0: all cores
  WorkerLimits limits;
  std::string record_view_dir;  ///< non-empty: record every received tensor there (--record-view)
  /// Testing aid, off when empty: corrupt results on purpose, "MODE[:PARAMS]" (FaultSpec::parse;
  /// `tempo train --fault`), to exercise the master's integrity checks.
  std::string fault;
};

/// Executes protocol requests on blinded tensors with a backend, keeping operands that the master
/// asks it to cache (section 4 of PROTOCOL.md) under a memory bound.
///
/// Every request is validated completely before anything is allocated, computed or cached:
/// a malformed request (bad ranks or shapes, sizes over the limits, unknown or reused handles,
/// bad conv parameters, a full cache) gets Response{ok=false, error=...} naming the op, the
/// operand and the problem, and leaves the worker exactly as it was. The cache changes (operands
/// put, `free_handles` dropped) are applied only once the result is computed.
///
/// Cached operands share storage with the request's tensors (no copy): the sender must not modify
/// a tensor after submitting it. execute() is serialised by an internal mutex; counters() and
/// capabilities() may be called from any thread at any time.
class Worker {
 public:
  /// `recorder` may be null (no view recording).
  explicit Worker(std::unique_ptr<Backend> backend, WorkerLimits limits = {},
                  std::unique_ptr<ViewRecorder> recorder = nullptr);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  /// Validates and executes one request. Never throws: every failure is an error response.
  protocol::Response execute(protocol::Request request);

  protocol::Capabilities capabilities() const;
  WorkerCounters counters() const;
  const WorkerLimits& limits() const { return limits_; }
  /// The view recorder, or null.
  ViewRecorder* recorder() const { return recorder_.get(); }
  /// Testing aid: corrupt results with `injector` from now on (null: stop). Not thread-safe
  /// against execute(): call before the first request.
  void set_fault_injector(std::unique_ptr<FaultInjector> injector) {
    fault_ = std::move(injector);
  }

 private:
  struct Resolved;

  std::string resolve(const protocol::Request& r, char which, Resolved* out) const;
  std::string validate(const protocol::Request& r, Resolved* a, Resolved* b, Shape* result) const;
  std::string validate_free_list(const protocol::Request& r, const Resolved* a,
                                 const Resolved* b) const;
  protocol::Response run(protocol::Request& r);
  void apply_cache_changes(const protocol::Request& r, const Resolved& a, const Resolved& b);

  std::unique_ptr<Backend> backend_;
  WorkerLimits limits_;
  std::unique_ptr<ViewRecorder> recorder_;
  std::unique_ptr<FaultInjector> fault_;  // testing aid; null: honest
  const std::string backend_name_, device_;

  std::mutex mu_;  // serialises execute()
  std::unordered_map<protocol::Handle, BlindedTensor> cache_;

  std::atomic<uint64_t> requests_{0}, failed_{0}, bytes_in_{0}, bytes_out_{0}, busy_ns_{0};
  std::atomic<int64_t> cache_bytes_{0}, cache_peak_bytes_{0}, cached_tensors_{0};
};

/// Builds a worker from options: backend, limits and (if asked) a view recorder.
/// Throws std::invalid_argument for an unknown backend, std::runtime_error if the view
/// directory cannot be written.
std::unique_ptr<Worker> make_worker(const WorkerOptions& options);

/// "4.0 MiB": a byte count for messages.
std::string format_bytes(int64_t bytes);

}  // namespace tempo::worker
