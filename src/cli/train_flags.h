// Flags shared by `tempo train`, `tempo eval` and `tempo bench`, and the compute wiring per mode.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/progress.h"
#include "master/train/trainer.h"

namespace tempo::cli {

/// Model, data, optimisation and mode flags.
void add_train_flags(CLI::App& cmd, train::TrainOptions& o);

/// How `--mode tempo` offloads (PROTOCOL.md section 7), and the embedded worker's settings.
struct OffloadFlags {
  std::string conv_mode = "patch";
  int sigma = 8;
  std::string patch_scales = "random-mantissa";  ///< --patch-scales random-mantissa|power-of-two
  std::vector<std::string> keep_in_tee;
  bool attention_in_tee = false;
  std::vector<std::string> channel_mode_layers;
  bool offload_first_layer = false;
  bool offload_head = false;
  int worker_threads = 0;
  std::string worker_backend = "cpu";     ///< --worker-backend cpu|cuda|cuda:N (embedded worker)
  std::string worker_precision = "fp32";  ///< --worker-precision fp32|tf32 (embedded worker)
  std::string worker_dispatch = "auto";   ///< --worker-dispatch auto|inline|thread (embedded)
  int64_t max_cache_bytes = int64_t{16} << 30;
  std::string record_view_dir;
  std::string record_view_steps = "all";  ///< --record-view-steps all|last|N|A-B
  bool privacy_report = false;
  bool traffic_report = false;
  std::vector<std::string>
      workers;                    ///< --worker HOST:PORT (repeatable); empty: the embedded worker
  std::string fallback = "stop";  ///< --fallback stop|local: no worker left
  int pipeline_chunks = 1;        ///< --pipeline-chunks: shards per worker and operation
  double worker_timeout_s = 600;  ///< --worker-timeout: a request unanswered this long = hung
  std::string tls_ca, tls_cert, tls_key;
  int verify_rounds = 1;                       ///< --verify-rounds (0: results unchecked)
  std::string on_integrity_failure = "retry";  ///< --on-integrity-failure retry|local|abort
  std::string fault;                           ///< --fault MODE[:PARAMS] (embedded worker; tests)
};
void add_offload_flags(CLI::App& cmd, OffloadFlags& f);

/// Where the products of a run execute. In plain mode nothing is set up. In tempo mode it owns
/// the workers (the embedded one by default) and the offload engine, and says what it did.
struct ComputeSession {
  train::ComputeAssigner assigner;
  std::function<void(nlohmann::json&)> add_to_summary = [](nlohmann::json&) {};
  /// Observer hooks that pause the embedded worker's view recorder outside the steps chosen by
  /// --record-view-steps (unset when every step is recorded).
  std::function<void(int64_t step, int64_t total_steps)> before_step;
  std::function<void()> before_evaluation;
  std::shared_ptr<void> keep_alive;
};
ComputeSession make_compute_session(const train::TrainOptions& o, const OffloadFlags& f,
                                    Progress& progress);

}  // namespace tempo::cli
