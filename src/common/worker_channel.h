// The interface through which the master reaches one worker, in-process or over the network.
#pragma once

#include <future>

#include "common/worker_protocol.h"

namespace tempo {

/// A connection to one (untrusted) worker. The master talks to every worker through this, whether
/// it runs in the same process (worker::EmbeddedWorker) or remotely (the gRPC service).
///
/// Ordering guarantee: requests submitted through one channel execute in submission order, so a
/// request may refer to a handle that an earlier, still pending request puts in the cache.
/// Errors in a request come back as a Response with ok=false (never as an exception from the
/// future); a channel that can no longer reach its worker answers every request that way.
class WorkerChannel {
 public:
  virtual ~WorkerChannel() = default;

  /// Queues a request; the future becomes ready when its response is available.
  /// Ownership of the request's tensors passes to the worker: the caller must not modify their
  /// storage afterwards (an in-process worker may keep them in its cache without copying).
  virtual std::future<protocol::Response> submit(protocol::Request request) = 0;

  /// What the worker offers: backend, device, protocol version, limits.
  virtual protocol::Capabilities capabilities() = 0;
};

}  // namespace tempo
