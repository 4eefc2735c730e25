// Untrusted side: `tempo worker`'s gRPC server: listening address, TLS, the service.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "common/remote/net_address.h"
#include "worker/worker.h"

namespace grpc {
class Server;
}

namespace tempo::worker::service {

class WorkerService;

struct ServerOptions {
  std::string listen = "127.0.0.1:0";  ///< HOST:PORT; port 0 picks a free port
  WorkerOptions worker;
  remote::TlsFiles tls;   ///< all three set: mutual TLS (clients must present a CA-signed cert)
  bool insecure = false;  ///< allow plaintext on a non-loopback address (--insecure)
  int max_sessions = 8;   ///< sessions served at once (each caches up to max_cache_bytes)
  /// Receives the log lines; default: stderr with a "tempo worker:" prefix.
  std::function<void(const std::string&)> log;
};

/// A running worker service. Plaintext is refused on a non-loopback address unless `insecure`;
/// on loopback it is allowed and logged loudly.
class WorkerServer {
 public:
  /// Binds and starts serving. Throws std::invalid_argument (bad flags) or std::runtime_error
  /// (cannot bind, unreadable TLS files).
  explicit WorkerServer(ServerOptions options);
  ~WorkerServer();  ///< shutdown()
  WorkerServer(const WorkerServer&) = delete;
  WorkerServer& operator=(const WorkerServer&) = delete;

  /// The bound port (the chosen one when listening on port 0).
  int port() const { return port_; }
  /// "HOST:PORT" with the bound port: what clients pass to --worker.
  std::string address() const;
  bool tls() const { return options_.tls.enabled(); }
  int sessions() const;

  /// Stops accepting, cancels open sessions (after a short grace period) and waits for them.
  void shutdown();
  /// Blocks until shutdown() is called from another thread.
  void wait();

 private:
  ServerOptions options_;
  remote::HostPort host_port_;
  std::unique_ptr<WorkerService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace tempo::worker::service
