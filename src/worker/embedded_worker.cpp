#include "worker/embedded_worker.h"

namespace tempo::worker {

EmbeddedWorker::EmbeddedWorker(std::unique_ptr<Worker> worker)
    : worker_(std::move(worker)), thread_([this] { loop(); }) {}

EmbeddedWorker::EmbeddedWorker(const WorkerOptions& options)
    : EmbeddedWorker(make_worker(options)) {}

EmbeddedWorker::~EmbeddedWorker() { shutdown(); }

std::future<protocol::Response> EmbeddedWorker::submit(protocol::Request request) {
  std::promise<protocol::Response> promise;
  std::future<protocol::Response> future = promise.get_future();
  {
    std::lock_guard lock(mu_);
    if (!stopping_) {
      queue_.emplace_back(std::move(request), std::move(promise));
      cv_.notify_one();
      return future;
    }
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
