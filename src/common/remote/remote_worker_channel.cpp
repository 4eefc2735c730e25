#include "common/remote/remote_worker_channel.h"

#include <grpcpp/grpcpp.h>

#include <cstring>
#include <stdexcept>

#include "common/remote/request_encoder.h"
#include "proto/tempo_worker.grpc.pb.h"

namespace tempo::remote {

namespace {

const char* code_name(int code) {
  static constexpr const char* kNames[] = {"OK",
                                           "CANCELLED",
                                           "UNKNOWN",
                                           "INVALID_ARGUMENT",
                                           "DEADLINE_EXCEEDED",
                                           "NOT_FOUND",
                                           "ALREADY_EXISTS",
                                           "PERMISSION_DENIED",
                                           "RESOURCE_EXHAUSTED",
                                           "FAILED_PRECONDITION",
                                           "ABORTED",
                                           "OUT_OF_RANGE",
                                           "UNIMPLEMENTED",
                                           "INTERNAL",
                                           "UNAVAILABLE",
                                           "DATA_LOSS",
                                           "UNAUTHENTICATED"};
  if (code >= 0 && code < static_cast<int>(std::size(kNames))) return kNames[code];
  return "UNKNOWN_CODE";
}

std::string seconds(std::chrono::milliseconds ms) {
  return std::to_string(static_cast<double>(ms.count()) / 1000.0).substr(0, 6) + " s";
}

std::string describe(const grpc::Status& s) {
  return std::string(code_name(s.error_code())) + ": " + s.error_message();
}

/// Cancels `context` unless disarmed within `timeout` (bounds the handshake's blocking reads).
class Guard {
 public:
  Guard(grpc::ClientContext* context, std::chrono::milliseconds timeout)
      : thread_([this, context, timeout] {
          std::unique_lock lock(mu_);
          if (!cv_.wait_for(lock, timeout, [this] { return done_; })) {
            expired_ = true;
            context->TryCancel();
          }
        }) {}
  ~Guard() { disarm(); }
  /// True if the guard fired.
  bool disarm() {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    return expired_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false, expired_ = false;
  std::thread thread_;
};

}  // namespace

RemoteWorkerChannel::RemoteWorkerChannel(RemoteWorkerOptions options)
    : options_(std::move(options)) {
  const HostPort hp = parse_host_port(options_.address);
  options_.tls.check(/*require_own_cert=*/false);
  const std::string who = "worker " + options_.address;
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (options_.tls.enabled()) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = read_pem_file(options_.tls.ca, "--tls-ca");
    if (!options_.tls.cert.empty()) {
      ssl.pem_cert_chain = read_pem_file(options_.tls.cert, "--tls-cert");
      ssl.pem_private_key = read_pem_file(options_.tls.key, "--tls-key");
    }
    creds = grpc::SslCredentials(ssl);
  } else if (is_loopback_host(hp.host)) {
    creds = grpc::InsecureChannelCredentials();
  } else {
    throw std::invalid_argument("refusing to send tensors in plaintext to " + who +
                                " (not a loopback address): give --tls-ca, --tls-cert and "
                                "--tls-key (docs/workers.md)");
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(4 << 20);
  // Larger HTTP/2 frames and windows: tensors are megabytes (docs/workers.md, measured).
  args.SetInt(GRPC_ARG_HTTP2_MAX_FRAME_SIZE, (1 << 24) - 1);
  args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 16 << 20);
  args.SetInt(GRPC_ARG_HTTP2_WRITE_BUFFER_SIZE, 8 << 20);
  channel_ = grpc::CreateCustomChannel(options_.address, creds, args);
  // Fails at the first failed attempt (refused, TLS rejected) rather than retrying until the
  // timeout: a master should learn at once that its worker is not there.
  const auto deadline = std::chrono::system_clock::now() + options_.connect_timeout;
  const std::string hint =
      options_.tls.enabled()
          ? " (is it listening there, is its certificate signed by --tls-ca and valid for this "
            "host name, and does it accept this client's certificate?)"
          : " (is `tempo worker --listen " + options_.address + "` running there?)";
  for (auto state = channel_->GetState(true); state != GRPC_CHANNEL_READY;
       state = channel_->GetState(true)) {
    std::string unreachable = "cannot reach " + who;
    if (state == GRPC_CHANNEL_TRANSIENT_FAILURE || state == GRPC_CHANNEL_SHUTDOWN)
      throw std::runtime_error(unreachable.append(": connection failed").append(hint));
    if (!channel_->WaitForStateChange(state, deadline))
      throw std::runtime_error(
          unreachable.append(" within ").append(seconds(options_.connect_timeout)).append(hint));
  }

  context_ = std::make_unique<grpc::ClientContext>();
  auto stub = wire::v1::TempoWorker::NewStub(channel_);
  stream_ = stub->Session(context_.get());
  Guard guard(context_.get(), options_.connect_timeout);
  wire::v1::ClientFrame hello;
  hello.mutable_hello()->set_protocol_version(options_.protocol_version);
  hello.mutable_hello()->set_client(options_.client_name);
  wire::v1::ServerFrame welcome;
  const bool ok = stream_->Write(hello) && stream_->Read(&welcome);
  const bool expired = guard.disarm();
  if (!ok || !welcome.has_welcome()) {
    if (ok) context_->TryCancel();
    const grpc::Status s = stream_->Finish();
    if (expired)
      throw std::runtime_error(who + " did not answer the handshake within " +
                               seconds(options_.connect_timeout));
    if (ok) throw std::runtime_error(who + " answered the handshake with something else");
    throw std::runtime_error(
        who + " refused the session: " + describe(s) +
        (s.error_code() == grpc::StatusCode::UNAVAILABLE && options_.tls.enabled()
             ? " (the worker requires a client certificate signed by its CA)"
             : ""));
  }
  const auto& w = welcome.welcome();
  session_id_ = w.session_id();
  capabilities_.protocol_version = w.capabilities().protocol_version();
  capabilities_.backend = w.capabilities().backend();
  capabilities_.device = w.capabilities().device();
  capabilities_.max_cache_bytes = w.capabilities().max_cache_bytes();
  capabilities_.max_tensor_bytes = w.capabilities().max_tensor_bytes();
  // Workers from before the field computed in fp32 only.
  capabilities_.precision =
      w.capabilities().precision().empty() ? "fp32" : w.capabilities().precision();

  writer_ = std::thread([this] { write_loop(); });
  reader_ = std::thread([this] { read_loop(); });
  watchdog_ = std::thread([this] { watchdog_loop(); });
}

RemoteWorkerChannel::~RemoteWorkerChannel() {
  {
    std::lock_guard lock(mu_);
    closing_ = true;
  }
  cv_.notify_all();
  reader_.join();  // the reader joins the writer
  {
    std::lock_guard lock(mu_);
    stop_watchdog_ = true;
  }
  wcv_.notify_all();
  watchdog_.join();
}

std::string RemoteWorkerChannel::broken_reason() {
  std::lock_guard lock(mu_);
  return broken_;
}

protocol::Response RemoteWorkerChannel::error_response(uint64_t id, protocol::Op op,
                                                       const std::string& why,
                                                       bool unavailable) const {
  protocol::Response r;
  r.id = id;
  r.ok = false;
  r.unavailable = unavailable;
  r.error = std::string(protocol::op_name(op)) + " (request " + std::to_string(id) + "): " + why;
  return r;
}

std::future<protocol::Response> RemoteWorkerChannel::submit(protocol::Request request) {
  std::promise<protocol::Response> promise;
  auto future = promise.get_future();
  std::string refuse;
  bool unavailable = false;
  // Operands over the worker's limit would end the session (the worker cannot skip their bytes):
  // refuse them here and keep the session.
  for (const protocol::Operand* o : {&request.a, &request.b})
    if (o->tensor.bytes() > capabilities_.max_tensor_bytes)
      refuse = "operand " + o->tensor.shape().to_string() + " is " +
               std::to_string(o->tensor.bytes()) + " bytes, over the per-tensor limit of " +
               std::to_string(capabilities_.max_tensor_bytes) + " bytes of worker " +
               options_.address + " (not sent)";
  {
    std::lock_guard lock(mu_);
    if (refuse.empty() && !broken_.empty()) refuse = broken_, unavailable = true;
    if (refuse.empty() && closing_)
      refuse = "the channel to worker " + options_.address + " is closed", unavailable = true;
    if (refuse.empty()) {
      pending_.push_back({request.id, request.op,
                          std::chrono::steady_clock::now() + options_.request_timeout,
                          std::move(promise)});
      queue_.push_back(std::move(request));
      cv_.notify_all();
      wcv_.notify_all();
      return future;
    }
  }
  promise.set_value(error_response(request.id, request.op, refuse, unavailable));
  return future;
}

void RemoteWorkerChannel::fail(const std::string& reason) {
  {
    std::lock_guard lock(mu_);
    if (broken_.empty()) broken_ = reason;
  }
  context_->TryCancel();
}

void RemoteWorkerChannel::write_loop() {
  for (;;) {
    protocol::Request r;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock,
               [this] { return !queue_.empty() || closing_ || reader_done_ || !broken_.empty(); });
      if (reader_done_ || !broken_.empty()) return;
      if (queue_.empty()) break;  // closing, everything written
      r = std::move(queue_.front());
      queue_.pop_front();
    }
    // A failed write means the call is over; the reader learns why from its status.
    if (!encode_request(r, [this](const wire::v1::ClientFrame& f) { return stream_->Write(f); }))
      return;
  }
  stream_->WritesDone();
}

void RemoteWorkerChannel::read_loop() {
  const std::string who = "worker " + options_.address;
  wire::v1::ServerFrame frame;
  protocol::Response cur;
  bool assembling = false;
  int64_t received = 0;
  auto complete = [this](protocol::Response r) {
    std::promise<protocol::Response> p;
    {
      std::lock_guard lock(mu_);
      p = std::move(pending_.front().promise);
      pending_.pop_front();
    }
    wcv_.notify_all();
    p.set_value(std::move(r));
  };
  while (stream_->Read(&frame)) {
    if (frame.has_response()) {
      const auto& h = frame.response();
      uint64_t expected_id = 0;
      protocol::Op op = protocol::Op::kMatMul;
      bool none = false;
      {
        std::lock_guard lock(mu_);
        none = pending_.empty();
        if (!none) expected_id = pending_.front().id, op = pending_.front().op;
      }
      if (assembling || none || h.id() != expected_id) {
        fail(who + " broke the protocol: response " + std::to_string(h.id()) +
             (assembling ? " before the previous result was complete"
              : none     ? " with no request pending"
                         : " when request " + std::to_string(expected_id) + " was next"));
        break;
      }
      if (h.code() != 0) {
        complete(error_response(h.id(), op, who + ": " + code_name(h.code()) + ": " + h.error()));
        continue;
      }
      // The worker is untrusted: bound the declared result before allocating it.
      Shape s;
      int64_t bytes = 4;
      bool bad = h.result_shape_size() > Shape::kMaxRank;
      for (int i = 0; !bad && i < h.result_shape_size(); ++i) {
        const int64_t d = h.result_shape(i);
        bad = d < 0 || d > INT32_MAX || __builtin_mul_overflow(bytes, d, &bytes) ||
              bytes > options_.max_result_bytes;
        if (!bad) s.push_back(d);
      }
      if (bad) {
        fail(who + " broke the protocol: the result of request " + std::to_string(h.id()) +
             " declares an invalid shape or more than " +
             std::to_string(options_.max_result_bytes) + " bytes");
        break;
      }
      cur = {};
      cur.id = h.id();
      cur.result = BlindedTensor::allocate(s);
      received = 0;
      if (cur.result.bytes() == 0) {
        complete(std::move(cur));
        cur = {};
      } else {
        assembling = true;
      }
    } else if (frame.has_chunk()) {
      const std::string& d = frame.chunk().data();
      const int64_t n = static_cast<int64_t>(d.size());
      if (!assembling || n > cur.result.bytes() - received) {
        fail(who + " broke the protocol: a result chunk of " + std::to_string(n) + " bytes " +
             (assembling ? "runs past the declared result" : "with no result in progress"));
        break;
      }
      std::memcpy(reinterpret_cast<char*>(cur.result.mutable_data()) + received, d.data(),
                  static_cast<size_t>(n));
      received += n;
      if (received == cur.result.bytes()) {
        assembling = false;
        complete(std::move(cur));
        cur = {};
      }
    } else {
      fail(who + " broke the protocol: unexpected frame in a session");
      break;
    }
  }
  {
    std::lock_guard lock(mu_);
    reader_done_ = true;
  }
  cv_.notify_all();
  writer_.join();
  const grpc::Status status = stream_->Finish();
  std::deque<Pending> orphans;
  std::string reason;
  {
    std::lock_guard lock(mu_);
    if (broken_.empty()) {
      if (!status.ok())
        broken_ = who + ": session ended: " + describe(status);
      else if (!pending_.empty())
        broken_ = who + " closed the session with " + std::to_string(pending_.size()) +
                  " requests unanswered";
      else
        broken_ = "the session with " + who + " is closed";
    }
    reason = broken_;
    orphans.swap(pending_);
    queue_.clear();
  }
  wcv_.notify_all();
  for (auto& p : orphans) p.promise.set_value(error_response(p.id, p.op, reason, true));
}

void RemoteWorkerChannel::watchdog_loop() {
  std::unique_lock lock(mu_);
  while (!stop_watchdog_) {
    if (pending_.empty() || !broken_.empty()) {
      wcv_.wait(lock);
      continue;
    }
    // Copies: the reader thread may pop this entry while we wait.
    const auto deadline = pending_.front().deadline;
    const auto id = pending_.front().id;
    const auto op = pending_.front().op;
    if (std::chrono::steady_clock::now() < deadline) {
      wcv_.wait_until(lock, deadline);
      continue;
    }
    broken_ = "worker " + options_.address + ": request " + std::to_string(id) + " (" +
              protocol::op_name(op) + ") got no response within " +
              seconds(options_.request_timeout) + "; session cancelled";
    lock.unlock();
    context_->TryCancel();
    lock.lock();
  }
}

}  // namespace tempo::remote
