// Untrusted side: turns the frames of a session (proto/tempo_worker.proto) back into requests,
// validating every declared size before anything is allocated.
#pragma once

#include <grpcpp/support/status.h>

#include <cstdint>
#include <string>

#include "common/worker_protocol.h"
#include "proto/tempo_worker.pb.h"

namespace tempo::worker::service {

/// Largest Chunk payload a worker accepts: under gRPC's default 4 MiB message limit, which the
/// server keeps (frames carry chunks, never whole tensors).
inline constexpr int64_t kMaxChunkBytes = int64_t{3} << 20;

/// Reassembles requests from RequestHeader and Chunk frames.
///
/// Checks, in this order and before allocating: the frame kind, ranks (<= Shape::kMaxRank),
/// dimensions (0..INT32_MAX), byte sizes (no overflow, <= max_tensor_bytes per operand), chunk
/// sizes (<= kMaxChunkBytes, never past the declared payload), and that a header only comes once
/// the previous request is complete. Any violation breaks the stream's framing: feed() returns
/// the gRPC status (INVALID_ARGUMENT or RESOURCE_EXHAUSTED) with a message naming the request, the
/// operand and the numbers, and the session must end. Whether shapes fit the op, and handles,
/// are the Worker's business (answered per request, the session goes on).
class RequestDecoder {
 public:
  enum class Result { kNeedMore, kReady, kError };

  explicit RequestDecoder(int64_t max_tensor_bytes) : max_tensor_bytes_(max_tensor_bytes) {}

  /// Consumes one frame received after the handshake. kReady: *ready holds a complete request.
  /// kError: *error says why the stream is broken; the decoder must not be fed again.
  Result feed(wire::v1::ClientFrame& frame, protocol::Request* ready, grpc::Status* error);

  /// True when no request is partially received.
  bool idle() const { return !in_progress_; }
  /// "request 7: 1.0 MiB of 4.0 MiB received" (for a stream that ends mid-request).
  std::string progress() const;

 private:
  Result start(const wire::v1::RequestHeader& h, protocol::Request* ready, grpc::Status* error);
  Result append(const std::string& data, protocol::Request* ready, grpc::Status* error);
  Result finish(protocol::Request* ready);

  int64_t max_tensor_bytes_;
  bool in_progress_ = false;
  protocol::Request req_;
  int64_t a_bytes_ = 0, b_bytes_ = 0, received_ = 0;
};

/// The gRPC status code that fits a Worker error message: NOT_FOUND for unknown handles,
/// RESOURCE_EXHAUSTED for limits and a full cache, INTERNAL for backend failures, else
/// INVALID_ARGUMENT.
grpc::StatusCode classify_worker_error(const std::string& message);

}  // namespace tempo::worker::service
