// Encodes protocol::Request into the frames of proto/tempo_worker.proto (the client's side).
#pragma once

#include <cstdint>
#include <functional>

#include "common/worker_protocol.h"
#include "proto/tempo_worker.pb.h"

namespace tempo::remote {

/// Payload bytes per Chunk frame that clients send: well under gRPC's default 4 MiB message limit,
/// large enough that per-message overhead is small (docs/workers.md has the measurements).
inline constexpr int64_t kChunkBytes = int64_t{2} << 20;

/// Writes `r` as a RequestHeader frame followed by the Chunk frames of its inline operands (a, then
/// b), each at most `chunk_bytes`, through `write`; stops early and returns false when `write`
/// does. One frame object is reused, so a chunk costs one copy of its bytes into the frame.
bool encode_request(const protocol::Request& r,
                    const std::function<bool(const wire::v1::ClientFrame&)>& write,
                    int64_t chunk_bytes = kChunkBytes);

/// The header of `r` alone (tests craft inconsistent requests from it).
void encode_request_header(const protocol::Request& r, wire::v1::RequestHeader* out);

}  // namespace tempo::remote
