// The master's connection to a `tempo worker` process over gRPC.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/remote/net_address.h"
#include "common/worker_channel.h"

namespace grpc {
class Channel;
class ClientContext;
template <class W, class R>
class ClientReaderWriter;
}  // namespace grpc

namespace tempo::wire::v1 {
class ClientFrame;
class ServerFrame;
}  // namespace tempo::wire::v1

namespace tempo::remote {

struct RemoteWorkerOptions {
  std::string address;  ///< HOST:PORT of `tempo worker --listen`
  TlsFiles tls;         ///< empty: plaintext, allowed to loopback addresses only
  std::chrono::milliseconds connect_timeout{10'000};
  /// Longest a request may wait for its response, counted from submit(). When one expires the
  /// session is cancelled: it and every later request fail (their order could not be kept).
  std::chrono::milliseconds request_timeout{600'000};
  /// Largest result this client accepts from the (untrusted) worker.
  int64_t max_result_bytes = int64_t{4} << 30;
  std::string client_name = "tempo 0.1.0";
  uint32_t protocol_version = protocol::kProtocolVersion;  ///< tests override it
};

/// WorkerChannel over one gRPC session (proto/tempo_worker.proto): many requests in flight,
/// executed by the worker in submission order; handles live as long as the session.
///
/// submit() returns at once: a writer thread streams requests out in chunks while a reader thread
/// reassembles responses (validating declared sizes before allocating) and fulfils the futures in
/// order. Worker-side rejections come back as ok=false with the worker's status code and message;
/// when the session breaks (worker gone, deadline, protocol violation) every pending and later
/// request gets ok=false naming the cause.
class RemoteWorkerChannel final : public WorkerChannel {
 public:
  /// Connects and performs the handshake. Throws std::runtime_error if the worker is unreachable
  /// within connect_timeout, TLS fails, or the worker refuses the session (e.g. protocol version),
  /// and std::invalid_argument for bad options (plaintext to a non-loopback address).
  explicit RemoteWorkerChannel(RemoteWorkerOptions options);
  /// Waits for the responses of requests already submitted, then closes the session.
  ~RemoteWorkerChannel() override;
  RemoteWorkerChannel(const RemoteWorkerChannel&) = delete;
  RemoteWorkerChannel& operator=(const RemoteWorkerChannel&) = delete;

  std::future<protocol::Response> submit(protocol::Request request) override;
  protocol::Capabilities capabilities() override { return capabilities_; }

  /// The worker-assigned id of this session (appears in the worker's log).
  const std::string& session_id() const { return session_id_; }
  const std::string& address() const { return options_.address; }
  /// Empty while the session works; else why it broke.
  std::string broken_reason();

 private:
  struct Pending {
    uint64_t id;
    protocol::Op op;
    std::chrono::steady_clock::time_point deadline;
    std::promise<protocol::Response> promise;
  };
  using Stream = grpc::ClientReaderWriter<wire::v1::ClientFrame, wire::v1::ServerFrame>;

  void write_loop();
  void read_loop();
  void watchdog_loop();
  /// Marks the session broken (first reason wins) and cancels the call.
  void fail(const std::string& reason);
  /// `unavailable`: the session is gone (not a rejection by the worker).
  protocol::Response error_response(uint64_t id, protocol::Op op, const std::string& why,
                                    bool unavailable = false) const;

  RemoteWorkerOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<grpc::ClientContext> context_;
  std::unique_ptr<Stream> stream_;
  protocol::Capabilities capabilities_;
  std::string session_id_;

  std::mutex mu_;
  std::condition_variable cv_;           // writer: queue_ / closing_ / broken
  std::condition_variable wcv_;          // watchdog: pending_ front / stopping
  std::deque<protocol::Request> queue_;  // submitted, not yet written
  std::deque<Pending> pending_;          // submitted, not yet answered (superset of queue_)
  bool closing_ = false, stop_watchdog_ = false, reader_done_ = false;
  std::string broken_;

  std::thread writer_, reader_, watchdog_;
};

}  // namespace tempo::remote
