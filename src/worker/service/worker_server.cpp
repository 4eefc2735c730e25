#include "worker/service/worker_server.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/security/server_credentials.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <stdexcept>

#include "worker/service/request_decoder.h"
#include "worker/service/worker_service.h"

namespace tempo::worker::service {

namespace {

// `tempo worker` restarts itself with OMP_WAIT_POLICY=passive unless the variable was set
// (cli/omp_wait_policy.h); the log says which policy its threads run under.
std::string omp_wait_policy() {
  const char* v = std::getenv("OMP_WAIT_POLICY");  // NOLINT(concurrency-mt-unsafe): read-only
  return v ? std::string(v) : "libgomp's default (spin, then sleep)";
}

void log_to_stderr(const std::string& line) {
  static std::mutex mu;
  std::lock_guard lock(mu);
  std::fprintf(stderr, "tempo worker: %s\n", line.c_str());
  std::fflush(stderr);
}

std::shared_ptr<grpc::ServerCredentials> credentials(const ServerOptions& o,
                                                     const remote::HostPort& hp) {
  const auto& log = o.log;
  if (o.tls.enabled()) {
    o.tls.check(/*require_own_cert=*/true);
    grpc::SslServerCredentialsOptions ssl(
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    ssl.pem_root_certs = remote::read_pem_file(o.tls.ca, "--tls-ca");
    ssl.pem_key_cert_pairs.push_back({remote::read_pem_file(o.tls.key, "--tls-key"),
                                      remote::read_pem_file(o.tls.cert, "--tls-cert")});
    log("mutual TLS: clients must present a certificate signed by " + o.tls.ca);
    return grpc::SslServerCredentials(ssl);
  }
  if (remote::is_loopback_host(hp.host)) {
    log("WARNING: PLAINTEXT, NO AUTHENTICATION: any local process can connect. Allowed because " +
        hp.host + " is a loopback address; use --tls-cert/--tls-key/--tls-ca for other machines");
  } else if (o.insecure) {
    log("WARNING: PLAINTEXT ON A NETWORK ADDRESS (--insecure): anyone who can reach " + hp.host +
        " can connect, and every blinded tensor crosses the network unencrypted");
  } else {
    throw std::invalid_argument(
        "refusing to serve plaintext on non-loopback address " + hp.host +
        ": give --tls-cert, --tls-key and --tls-ca (mutual TLS, docs/workers.md), or --insecure "
        "if the network is trusted");
  }
  return grpc::InsecureServerCredentials();
}

}  // namespace

WorkerServer::WorkerServer(ServerOptions options) : options_(std::move(options)) {
  if (!options_.log) options_.log = log_to_stderr;
  if (options_.max_sessions < 1) throw std::invalid_argument("--max-sessions must be at least 1");
  host_port_ = remote::parse_host_port(options_.listen);
  auto creds = credentials(options_, host_port_);
  service_ = std::make_unique<WorkerService>(options_.worker, options_.max_sessions, options_.log);

  grpc::ServerBuilder builder;
  builder.AddListeningPort(options_.listen, creds, &port_);
  builder.RegisterService(service_.get());
  // Frames carry chunks of at most kMaxChunkBytes: gRPC's default 4 MiB limit stays in force.
  builder.SetMaxReceiveMessageSize(4 << 20);
  // Larger HTTP/2 frames and windows: tensors are megabytes (docs/workers.md, measured).
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_FRAME_SIZE, (1 << 24) - 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 16 << 20);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_WRITE_BUFFER_SIZE, 8 << 20);
  server_ = builder.BuildAndStart();
  if (!server_ || port_ == 0)
    throw std::runtime_error("cannot listen on " + options_.listen +
                             " (address in use, or not an address of this machine?)");
  options_.log("listening on " + address() + " (backend " + options_.worker.backend + ", max " +
               std::to_string(options_.max_sessions) + " sessions, " +
               format_bytes(options_.worker.limits.max_cache_bytes) + " cache and " +
               format_bytes(options_.worker.limits.max_tensor_bytes) +
               " per tensor per session, OpenMP waits " + omp_wait_policy() + ")");
}

WorkerServer::~WorkerServer() { shutdown(); }

std::string WorkerServer::address() const {
  const bool v6 = host_port_.host.find(':') != std::string::npos;
  return (v6 ? "[" + host_port_.host + "]" : host_port_.host) + ":" + std::to_string(port_);
}

int WorkerServer::sessions() const { return service_->sessions(); }

void WorkerServer::shutdown() {
  if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
}

void WorkerServer::wait() {
  if (server_) server_->Wait();
}

}  // namespace tempo::worker::service
