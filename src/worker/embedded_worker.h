// The in-process worker: a Worker on its own thread behind the WorkerChannel interface.
#pragma once

#include <condition_variable>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>

#include "common/worker_channel.h"
#include "worker/worker.h"

namespace tempo::worker {

/// Runs a Worker on a dedicated thread, fed by a FIFO queue: requests execute one at a time, in
/// submission order (the offload engine relies on this for handles), while the submitting thread
/// goes on (e.g. blinding the next product). The master uses this by default; the remote service
/// implements the same WorkerChannel.
class EmbeddedWorker final : public WorkerChannel {
 public:
  explicit EmbeddedWorker(std::unique_ptr<Worker> worker);
  explicit EmbeddedWorker(const WorkerOptions& options);
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
  WorkerCounters counters() const { return worker_->counters(); }

 private:
  void loop();

  std::unique_ptr<Worker> worker_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<protocol::Request, std::promise<protocol::Response>>> queue_;
  bool stopping_ = false;
  std::mutex join_mu_;  // shutdown() from two threads joins once
  std::thread thread_;  // last: starts once everything above exists
};

}  // namespace tempo::worker
