#include "worker/embedded_worker.h"

#include <stdexcept>

namespace tempo::worker {

EmbeddedDispatch default_dispatch(const std::string& backend) {
  return backend == "cpu" ? EmbeddedDispatch::kInline : EmbeddedDispatch::kThread;
}

const char* dispatch_name(EmbeddedDispatch dispatch) {
  return dispatch == EmbeddedDispatch::kInline ? "inline" : "thread";
}

EmbeddedDispatch parse_dispatch(const std::string& name, const std::string& backend) {
  if (name == "auto") return default_dispatch(backend);
  for (EmbeddedDispatch d : {EmbeddedDispatch::kInline, EmbeddedDispatch::kThread})
    if (name == dispatch_name(d)) return d;
  throw std::invalid_argument("embedded worker dispatch '" + name +
                              "': expected auto, inline or thread");
}

EmbeddedWorker::EmbeddedWorker(std::unique_ptr<Worker> worker, EmbeddedDispatch dispatch)
    : worker_(std::move(worker)), dispatch_(dispatch) {
  if (dispatch_ == EmbeddedDispatch::kThread) thread_ = std::thread([this] { loop(); });
}

EmbeddedWorker::EmbeddedWorker(const WorkerOptions& options, EmbeddedDispatch dispatch)
    : EmbeddedWorker(make_worker(options), dispatch) {}

EmbeddedWorker::~EmbeddedWorker() { shutdown(); }

std::future<protocol::Response> EmbeddedWorker::submit(protocol::Request request) {
  std::promise<protocol::Response> promise;
  std::future<protocol::Response> future = promise.get_future();
  bool stopping = false;
  {
    std::lock_guard lock(mu_);
    stopping = stopping_;
    if (!stopping && dispatch_ == EmbeddedDispatch::kThread) {
      queue_.emplace_back(std::move(request), std::move(promise));
      cv_.notify_one();
      return future;
    }
  }
  if (!stopping) {
    // Worker::execute never throws, and serialises concurrent callers itself.
    promise.set_value(worker_->execute(std::move(request)));
    return future;
  }
  protocol::Response r;
  r.id = request.id;
  r.ok = false;
  r.error = std::string(protocol::op_name(request.op)) + ": the embedded worker is shut down";
  promise.set_value(std::move(r));
  return future;
}

void EmbeddedWorker::shutdown() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  std::lock_guard join_lock(join_mu_);
  if (thread_.joinable()) thread_.join();
}

void EmbeddedWorker::loop() {
  for (;;) {
    std::pair<protocol::Request, std::promise<protocol::Response>> item;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything submitted has been answered
      item = std::move(queue_.front());
      queue_.pop_front();
    }
    // Worker::execute never throws, so every promise is fulfilled.
    item.second.set_value(worker_->execute(std::move(item.first)));
  }
}

}  // namespace tempo::worker
