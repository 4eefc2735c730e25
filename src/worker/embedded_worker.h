// The in-process worker: a Worker on its own thread behind the WorkerChannel interface.
#pragma once

#include <condition_variable>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "common/worker_channel.h"
#include "worker/worker.h"

namespace tempo::worker {

/// Where an EmbeddedWorker executes its requests.
enum class EmbeddedDispatch {
  /// On its own thread, fed by a FIFO queue, while the submitting thread goes on (e.g. blinding
  /// the next product): for a GPU backend, which computes while the master works.
  kThread,
  /// Inside submit(), on the submitting thread (the future is ready when submit returns): for the
  /// CPU backend, whose products run on the master's own cores anyway. A second thread and its
  /// OpenMP team there only oversubscribe the cores: the master's concurrent check and blinding
  /// passes and the worker's GEMM slow each other down, and every request costs thread wake-ups
  /// (docs/benchmarks.md, "Stop 16").
  kInline,
};

/// kInline for the "cpu" backend, kThread for the others (CUDA).
EmbeddedDispatch default_dispatch(const std::string& backend);

/// "inline" or "thread".
const char* dispatch_name(EmbeddedDispatch dispatch);

/// "thread" | "inline" (and "auto": default_dispatch(backend)) -> EmbeddedDispatch; throws
/// std::invalid_argument for anything else.
EmbeddedDispatch parse_dispatch(const std::string& name, const std::string& backend);

/// Runs a Worker in-process behind the WorkerChannel interface: requests execute one at a time, in
/// submission order (the offload engine relies on this for handles), on the worker's own thread
/// or on the submitting one (EmbeddedDispatch). The master uses this by default; the remote
/// service implements the same WorkerChannel.
class EmbeddedWorker final : public WorkerChannel {
 public:
  explicit EmbeddedWorker(std::unique_ptr<Worker> worker,
                          EmbeddedDispatch dispatch = EmbeddedDispatch::kThread);
  explicit EmbeddedWorker(const WorkerOptions& options,
                          EmbeddedDispatch dispatch = EmbeddedDispatch::kThread);
  /// shutdown(): every request already submitted still gets its response.
  ~EmbeddedWorker() override;
  EmbeddedWorker(const EmbeddedWorker&) = delete;
  EmbeddedWorker& operator=(const EmbeddedWorker&) = delete;

  /// After shutdown() the future is ready at once with ok=false.
  std::future<protocol::Response> submit(protocol::Request request) override;
  protocol::Capabilities capabilities() override { return worker_->capabilities(); }

  /// Executes what is queued, then stops the thread. Idempotent; safe from any thread but the
  /// worker's own.
  void shutdown();

  const Worker& worker() const { return *worker_; }
  EmbeddedDispatch dispatch() const { return dispatch_; }
  WorkerCounters counters() const { return worker_->counters(); }

 private:
  void loop();

  std::unique_ptr<Worker> worker_;
  EmbeddedDispatch dispatch_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<protocol::Request, std::promise<protocol::Response>>> queue_;
  bool stopping_ = false;
  std::mutex join_mu_;  // shutdown() from two threads joins once
  std::thread thread_;  // last: starts once everything above exists (kThread only)
};

}  // namespace tempo::worker
