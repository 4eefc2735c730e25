#include "worker/service/worker_service.h"

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "worker/backend.h"
#include "worker/service/request_decoder.h"

namespace tempo::worker::service {

namespace {

using Stream = grpc::ServerReaderWriter<wire::v1::ServerFrame, wire::v1::ClientFrame>;

/// Payload bytes per result Chunk the worker sends.
constexpr int64_t kResultChunkBytes = int64_t{2} << 20;

std::string random_session_id() {
  std::random_device rd;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%08x%08x", rd(), rd());
  return buf;
}

/// Requests decoded by the session's reader thread, handed to the executing thread. Holds at most
/// one request, so a session buffers at most two (one decoding, one here) besides the one running.
class RequestQueue {
 public:
  /// Blocks while full; false once the consumer has stopped.
  bool push(protocol::Request r) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !item_ || stopped_; });
    if (stopped_) return false;
    item_ = std::move(r);
    cv_.notify_all();
    return true;
  }
  /// The producer is done: `status` is OK for a clean end of the stream.
  void close(grpc::Status status) {
    std::lock_guard lock(mu_);
    closed_ = true;
    status_ = std::move(status);
    cv_.notify_all();
  }
  /// The next request, or nothing once the producer closed and everything was taken.
  std::optional<protocol::Request> pop() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return item_ || closed_; });
    if (!item_) return std::nullopt;
    std::optional<protocol::Request> r = std::move(item_);
    item_.reset();
    cv_.notify_all();
    return r;
  }
  void stop() {
    std::lock_guard lock(mu_);
    stopped_ = true;
    cv_.notify_all();
  }
  grpc::Status status() {
    std::lock_guard lock(mu_);
    return status_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<protocol::Request> item_;
  bool closed_ = false, stopped_ = false;
  grpc::Status status_;
};

/// Writes a response header and its result chunks; false when the client is gone.
bool write_response(Stream* stream, const protocol::Response& r) {
  wire::v1::ServerFrame frame;
  auto* h = frame.mutable_response();
  h->set_id(r.id);
  if (!r.ok) {
    h->set_code(static_cast<int32_t>(classify_worker_error(r.error)));
    h->set_error(r.error);
    return stream->Write(frame);
  }
  for (int i = 0; i < r.result.rank(); ++i) h->add_result_shape(r.result.dim(i));
  if (!stream->Write(frame)) return false;
  std::string* data = frame.mutable_chunk()->mutable_data();
  const char* p = reinterpret_cast<const char*>(r.result.data());
  const int64_t total = r.result.bytes();
  for (int64_t off = 0; off < total; off += kResultChunkBytes) {
    data->assign(p + off, static_cast<size_t>(std::min(kResultChunkBytes, total - off)));
    if (!stream->Write(frame)) return false;
  }
  return true;
}

}  // namespace

WorkerService::WorkerService(WorkerOptions options, int max_sessions,
                             std::function<void(const std::string&)> log)
    : options_(std::move(options)), max_sessions_(max_sessions), log_(std::move(log)) {
  // Builds a backend once: an unknown backend fails at start-up, not at the first session.
  const auto backend =
      make_backend(options_.backend, options_.threads, parse_precision(options_.precision));
  capabilities_.set_protocol_version(protocol::kProtocolVersion);
  capabilities_.set_backend(backend->name());
  capabilities_.set_device(backend->device());
  capabilities_.set_max_cache_bytes(options_.limits.max_cache_bytes);
  capabilities_.set_max_tensor_bytes(options_.limits.max_tensor_bytes);
  capabilities_.set_max_chunk_bytes(kMaxChunkBytes);
  capabilities_.set_precision(precision_name(backend->precision()));
  for (auto op :
       {protocol::Op::kMatMul, protocol::Op::kBatchedMatMul, protocol::Op::kConvForward,
        protocol::Op::kConvBackwardData, protocol::Op::kConvBackwardWeights, protocol::Op::kFree})
    capabilities_.add_ops(protocol::op_name(op));
}

grpc::Status WorkerService::Probe(grpc::ServerContext*, const wire::v1::ProbeRequest*,
                                  wire::v1::Capabilities* reply) {
  *reply = capabilities_;
  return grpc::Status::OK;
}

grpc::Status WorkerService::Session(grpc::ServerContext* context, Stream* stream) {
  const std::string peer = context->peer();
  wire::v1::ClientFrame first;
  if (!stream->Read(&first))
    return {grpc::StatusCode::INVALID_ARGUMENT, "the session ended before its Hello"};
  if (!first.has_hello()) {
    log_("rejected a session from " + peer + ": first frame is not Hello");
    return {grpc::StatusCode::INVALID_ARGUMENT,
            "the first frame of a session must be Hello (protocol version handshake)"};
  }
  const uint32_t version = first.hello().protocol_version();
  if (version != protocol::kProtocolVersion) {
    log_("rejected a session from " + peer + ": protocol version " + std::to_string(version));
    return {grpc::StatusCode::FAILED_PRECONDITION,
            "protocol version " + std::to_string(version) +
                " is not supported: this worker speaks version " +
                std::to_string(protocol::kProtocolVersion) +
                "; run the same Tempo release on master and workers"};
  }
  if (sessions_.fetch_add(1) >= max_sessions_) {
    sessions_.fetch_sub(1);
    log_("rejected a session from " + peer + ": " + std::to_string(max_sessions_) +
         " sessions already open");
    return {grpc::StatusCode::RESOURCE_EXHAUSTED, "this worker already serves " +
                                                      std::to_string(max_sessions_) +
                                                      " sessions (--max-sessions)"};
  }
  struct Release {
    std::atomic<int>& n;
    ~Release() { n.fetch_sub(1); }
  } release{sessions_};

  const std::string id = random_session_id();
  WorkerOptions wo = options_;
  if (!wo.record_view_dir.empty())
    wo.record_view_dir += "/session-" + std::to_string(session_counter_.fetch_add(1) + 1);
  std::unique_ptr<Worker> worker;
  try {
    worker = make_worker(wo);
  } catch (const std::exception& e) {
    return {grpc::StatusCode::INTERNAL, std::string("cannot start a session: ") + e.what()};
  }
  log_("session " + id + " opened by " + peer + " (" + first.hello().client() + ")" +
       (wo.record_view_dir.empty() ? "" : "; recording its view in " + wo.record_view_dir));

  wire::v1::ServerFrame welcome;
  welcome.mutable_welcome()->set_session_id(id);
  *welcome.mutable_welcome()->mutable_capabilities() = capabilities_;
  if (!stream->Write(welcome)) return {grpc::StatusCode::CANCELLED, "client gone"};

  grpc::Status status = serve(context, stream, *worker, id);
  const WorkerCounters c = worker->counters();
  log_("session " + id + " closed: " + std::to_string(c.requests) + " requests (" +
       std::to_string(c.failed) + " rejected), " + format_bytes(static_cast<int64_t>(c.bytes_in)) +
       " in, " + format_bytes(static_cast<int64_t>(c.bytes_out)) + " out" +
       (wo.fault.empty() ? ""
                         : "; TESTING AID --fault " + wo.fault + ": " +
                               std::to_string(c.faults_injected) + " results corrupted") +
       (status.ok() ? "" : "; stream error: " + status.error_message()));
  return status;
}

grpc::Status WorkerService::serve(grpc::ServerContext* context, Stream* stream, Worker& worker,
                                  const std::string&) {
  RequestQueue queue;
  std::thread reader([&] {
    RequestDecoder decoder(worker.limits().max_tensor_bytes);
    wire::v1::ClientFrame frame;
    protocol::Request request;
    grpc::Status error;
    while (stream->Read(&frame)) {
      switch (decoder.feed(frame, &request, &error)) {
        case RequestDecoder::Result::kNeedMore:
          break;
        case RequestDecoder::Result::kReady:
          if (!queue.push(std::move(request))) return queue.close(grpc::Status::OK);
          break;
        case RequestDecoder::Result::kError:
          return queue.close(error);
      }
    }
    if (!decoder.idle())
      return queue.close({grpc::StatusCode::INVALID_ARGUMENT,
                          "the stream ended in the middle of a request: " + decoder.progress()});
    queue.close(grpc::Status::OK);
  });
  bool client_gone = false;
  while (auto request = queue.pop()) {
    if (!write_response(stream, worker.execute(std::move(*request)))) {
      client_gone = true;
      break;
    }
  }
  if (client_gone) {
    queue.stop();
    context->TryCancel();  // unblocks the reader's Read
  }
  reader.join();
  if (client_gone) return {grpc::StatusCode::CANCELLED, "the client went away"};
  return queue.status();
}

}  // namespace tempo::worker::service
