// Untrusted side: the gRPC service of `tempo worker` (proto/tempo_worker.proto).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "proto/tempo_worker.grpc.pb.h"
#include "worker/worker.h"

namespace tempo::worker::service {

/// Serves sessions: each Session stream gets its own Worker (own handle cache, bounded by
/// max_cache_bytes; own view log under record_view_dir/session-N), so two masters never see each
/// other's handles, and a session's cache is freed when its stream ends.
///
/// Within a session, a reader thread decodes the next request while the previous one computes and
/// its result streams back; requests still execute strictly in order.
class WorkerService final : public wire::v1::TempoWorker::Service {
 public:
  /// `log` receives one line per event (sessions, rejected streams); it must be thread-safe.
  WorkerService(WorkerOptions options, int max_sessions,
                std::function<void(const std::string&)> log);

  grpc::Status Probe(grpc::ServerContext* context, const wire::v1::ProbeRequest* request,
                     wire::v1::Capabilities* reply) override;
  grpc::Status Session(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<wire::v1::ServerFrame, wire::v1::ClientFrame>* stream) override;

  /// Sessions open now.
  int sessions() const { return sessions_.load(); }

 private:
  grpc::Status serve(grpc::ServerContext* context,
                     grpc::ServerReaderWriter<wire::v1::ServerFrame, wire::v1::ClientFrame>* stream,
                     Worker& worker, const std::string& session);

  WorkerOptions options_;
  int max_sessions_;
  std::function<void(const std::string&)> log_;
  wire::v1::Capabilities capabilities_;
  std::atomic<int> sessions_{0};
  std::atomic<uint64_t> session_counter_{0};
};

}  // namespace tempo::worker::service
