// `tempo worker`: serve blinded products to masters over gRPC (docs/workers.md).
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "cli/commands.h"
#include "worker/service/worker_server.h"

namespace tempo::cli {

Command add_worker_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "worker",
      "Run an untrusted worker: serve blinded products to masters over gRPC until SIGINT/SIGTERM. "
      "Log lines go to stderr.");
  auto o = std::make_shared<worker::service::ServerOptions>();
  o->listen = "";
  cmd->add_option("--listen", o->listen,
                  "HOST:PORT to listen on (port 0: any free port, printed at start-up)")
      ->required();
  cmd->add_option("--backend", o->worker.backend,
                  "Compute backend: cpu | cuda | cuda:N (CUDA builds, docs/gpu.md)")
      ->check(CLI::Validator(
          [](std::string& v) -> std::string {
            if (v == "cpu" || v == "cuda") return "";
            if (v.starts_with("cuda:") && v.size() > 5 &&
                v.find_first_not_of("0123456789", 5) == std::string::npos)
              return "";
            return "expected cpu, cuda or cuda:N, not '" + v + "'";
          },
          "cpu|cuda[:N]"))
      ->capture_default_str();
  cmd->add_option("--precision", o->worker.precision,
                  "Arithmetic of the products: fp32, or tf32 (tensor cores; cuda backends only)")
      ->check(CLI::IsMember({"fp32", "tf32"}))
      ->capture_default_str();
  cmd->add_option("--threads", o->worker.threads, "Compute threads (0: all cores)")
      ->capture_default_str();
  cmd->add_option("--max-cache-bytes", o->worker.limits.max_cache_bytes,
                  "Bound on the operands one session caches between forward and backward")
      ->capture_default_str();
  cmd->add_option("--max-tensor-bytes", o->worker.limits.max_tensor_bytes,
                  "Largest operand or result accepted")
      ->capture_default_str();
  cmd->add_option("--max-sessions", o->max_sessions, "Masters served at once")
      ->capture_default_str();
  cmd->add_option("--record-view", o->worker.record_view_dir,
                  "Record every tensor received into DIR/session-N/ (docs/view-format.md)");
  cmd->add_option("--fault", o->worker.fault,
                  "TESTING AID: corrupt results on purpose, MODE[:F[:SEED]] with MODE "
                  "random|perturb-one|pair|sign-flip|rescale|stale|swap|zeros|wrong-shape and F "
                  "the fraction of results (docs/integrity.md); each session logs how many it "
                  "corrupted when it closes");
  cmd->add_option("--tls-cert", o->tls.cert, "This worker's certificate (PEM)");
  cmd->add_option("--tls-key", o->tls.key, "This worker's private key (PEM)");
  cmd->add_option("--tls-ca", o->tls.ca, "CA that signed the masters' client certificates (PEM)");
  cmd->add_flag("--insecure", o->insecure,
                "Allow plaintext without authentication on a non-loopback address");
  return {cmd, [o] {
            // The service probes its backend at start-up in fp32; check the pair here so that a
            // bad one fails now, not at the first session.
            if (o->worker.backend == "cpu" && o->worker.precision != "fp32")
              throw std::invalid_argument("--precision " + o->worker.precision +
                                          " needs a cuda backend (the cpu backend is fp32 only)");
            // Signals go to the waiting thread below, not to gRPC's threads (created later).
            sigset_t signals;
            sigemptyset(&signals);
            sigaddset(&signals, SIGINT);
            sigaddset(&signals, SIGTERM);
            pthread_sigmask(SIG_BLOCK, &signals, nullptr);
            worker::service::WorkerServer server(*o);
            std::printf("tempo worker: listening on %s\n", server.address().c_str());
            std::fflush(stdout);
            int sig = 0;
            sigwait(&signals, &sig);
            std::fprintf(stderr, "tempo worker: %s, shutting down\n",
                         sig == SIGINT ? "SIGINT" : "SIGTERM");
            server.shutdown();
            return 0;
          }};
}

}  // namespace tempo::cli
