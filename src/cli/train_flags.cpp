#include "cli/train_flags.h"

#include "cli/record_view_steps.h"

#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include "cli/privacy_report.h"
#include "common/remote/remote_worker_channel.h"
#include "master/offload/offload_engine.h"
#include "worker/embedded_worker.h"

namespace tempo::cli {

namespace {

/// A remote worker may compute no coarser than the master accepts (integrity::precision_refusal).
void require_accepted_precision(const std::string& address, const protocol::Capabilities& caps,
                                const std::string& accepted) {
  const std::string why =
      integrity::precision_refusal(caps.precision, integrity::parse_precision(accepted));
  if (!why.empty())
    throw std::invalid_argument("worker " + address + " " + why + ": start it with --precision " +
                                accepted + ", or pass --worker-precision " + caps.precision +
                                " to accept its rounding (the checks then tolerate it)");
}

}  // namespace

void add_train_flags(CLI::App& cmd, train::TrainOptions& o) {
  cmd.add_option("--model", o.model, "mlp | cnn | resnet18 | resnet50 | vit-tiny | vit-s4")
      ->capture_default_str();
  cmd.add_option("--dataset", o.dataset, "fashion-mnist | cifar10 | synthetic")
      ->capture_default_str();
  cmd.add_option("--data-dir", o.data_dir,
                 "Dataset directory (fashion-mnist default: /usr/share/datasets/fashion-mnist; "
                 "cifar10: the directory with data_batch_*.bin)");
  cmd.add_option("--limit-train", o.limit_train, "Train on the first N samples only (0: all)");
  cmd.add_option("--limit-test", o.limit_test,
                 "Evaluate on the first N test samples only (0: all)");
  cmd.add_flag("--augment", o.augment, "Random crop (padding 4) and horizontal flip");
  cmd.add_option("--image-size", o.image_size,
                 "Pad inputs to this size (0: 32 for resnet*/vit*, else the dataset's)");
  cmd.add_option("--mode", o.mode,
                 "plain: everything in the TEE (the pure-TEE baseline); tempo: offload blinded "
                 "products to workers")
      ->check(CLI::IsMember({"plain", "tempo"}))
      ->capture_default_str();
  cmd.add_option("--batch-size", o.batch_size, "Samples per step")->capture_default_str();
  cmd.add_option("--optimizer", o.optimizer, "sgd | adamw")
      ->check(CLI::IsMember({"sgd", "adamw"}))
      ->capture_default_str();
  cmd.add_option("--lr", o.lr, "Peak learning rate")->capture_default_str();
  cmd.add_option("--momentum", o.momentum, "SGD momentum")->capture_default_str();
  cmd.add_flag("--nesterov", o.nesterov, "Nesterov momentum (SGD)");
  cmd.add_option("--weight-decay", o.weight_decay,
                 "L2 (SGD) or decoupled (AdamW) weight decay; not applied to biases and norms")
      ->capture_default_str();
  cmd.add_option("--lr-schedule", o.lr_schedule, "constant | step | cosine")
      ->check(CLI::IsMember({"constant", "step", "cosine"}))
      ->capture_default_str();
  cmd.add_option("--warmup-steps", o.warmup_steps, "Linear warm-up steps")->capture_default_str();
  cmd.add_option("--lr-step-size", o.lr_step_size, "Epochs between decays (step schedule)")
      ->capture_default_str();
  cmd.add_option("--lr-gamma", o.lr_gamma, "Decay factor (step schedule)")->capture_default_str();
  cmd.add_option("--label-smoothing", o.label_smoothing, "Cross-entropy label smoothing")
      ->capture_default_str();
  cmd.add_option("--seed", o.seed, "Seed of initialisation, shuffling, augmentation, dropout")
      ->capture_default_str();
  cmd.add_option("--threads", o.threads, "CPU threads of the master (0: every core)")
      ->capture_default_str();
}

void add_offload_flags(CLI::App& cmd, OffloadFlags& f) {
  auto* g = cmd.add_option_group("Offload (--mode tempo)");
  g->add_option("--conv-mode", f.conv_mode,
                "patch: convs as blinded im2col products, hiding spatial layout (default); "
                "channel: blinded channels, faster, spatial maps visible to workers")
      ->check(CLI::IsMember({"patch", "channel"}))
      ->capture_default_str();
  g->add_option("--sigma", f.sigma, "Scales lie in [2^-sigma, 2^sigma] (0: no scaling)")
      ->check(CLI::Range(0, 60))
      ->capture_default_str();
  g->add_option("--patch-scales", f.patch_scales,
                "Scales of patch mode's positions and patch columns: random-mantissa (default: "
                "random significands, so the kh*kw copies im2col makes of each input value do not "
                "share significand bits, which would link overlapping patches; results round) or "
                "power-of-two (exact arithmetic, that link stays visible to workers; "
                "docs/privacy.md)")
      ->check(CLI::IsMember({"random-mantissa", "power-of-two"}))
      ->capture_default_str();
  g->add_option("--keep-in-tee", f.keep_in_tee,
                "Keep this layer (module path or prefix, e.g. layer4) in the TEE; repeatable");
  g->add_flag("--attention-in-tee", f.attention_in_tee,
              "Compute the attention products Q.K^T and A.V in the TEE; their Linear layers stay "
              "offloaded (ViTs: a few % of the FLOPs, about half of the blinded bytes)");
  g->add_option("--channel-mode-layer", f.channel_mode_layers,
                "Run this conv (path or prefix) in the other conv mode; repeatable");
  g->add_flag("--offload-first-layer", f.offload_first_layer,
              "Offload the first layer too (by default raw inputs never leave the TEE)");
  g->add_flag("--offload-head", f.offload_head,
              "Offload the classifier head too (by default logits stay in the TEE)");
  g->add_option("--worker-threads", f.worker_threads, "Threads of the embedded worker (0: all)");
  g->add_option(
       "--worker-dispatch", f.worker_dispatch,
       "Where the embedded worker runs a request: inline (on the master's thread: the CPU "
       "backend shares its cores, a thread of its own only oversubscribes them), thread "
       "(its own thread, overlapping with the master: a GPU backend), auto (inline for cpu, "
       "thread otherwise)")
      ->check(CLI::IsMember({"auto", "inline", "thread"}))
      ->capture_default_str();
  g->add_option("--worker-backend", f.worker_backend,
                "Compute backend of the embedded worker: cpu | cuda | cuda:N (docs/gpu.md)")
      ->capture_default_str();
  g->add_option("--worker-precision", f.worker_precision,
                "Arithmetic of the embedded worker: fp32, or tf32 (cuda only); the checks "
                "tolerate that precision's rounding, and remote workers may compute no coarser "
                "(docs/integrity.md)")
      ->check(CLI::IsMember({"fp32", "tf32"}))
      ->capture_default_str();
  g->add_option("--max-cache-bytes", f.max_cache_bytes,
                "Bound on the operands the embedded worker caches between forward and backward")
      ->capture_default_str();
  g->add_option("--record-view", f.record_view_dir,
                "Record every tensor the embedded worker receives into DIR (docs/view-format.md)");
  g->add_flag("--privacy-report", f.privacy_report,
              "Print where each layer runs and its key-space bits before training");
  g->add_flag("--traffic-report", f.traffic_report,
              "Add per-layer bytes sent and received to the JSON summary");
  g->add_option("--worker", f.workers,
                "Offload to the `tempo worker` at HOST:PORT instead of the embedded worker; "
                "repeatable: each product is split by batch across the workers, in proportion to "
                "their measured throughput, each shard under its own key");
  g->add_option("--fallback", f.fallback,
                "When no worker is left: stop (write the checkpoint of the last completed step "
                "and exit with status 3) or local (compute in the TEE until a worker is back)")
      ->check(CLI::IsMember({"stop", "local"}))
      ->capture_default_str();
  g->add_option("--pipeline-chunks", f.pipeline_chunks,
                "Shards per worker and product: >= 2 overlaps blinding, transfer, the worker's "
                "product and unblinding (each shard sends the blinded weights once more)")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  g->add_option("--worker-timeout", f.worker_timeout_s,
                "Seconds a remote worker may take to answer one request before it counts as "
                "hung: its work goes to the other workers")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  g->add_option("--tls-ca", f.tls_ca, "CA that signed the workers' certificates (PEM)");
  g->add_option("--tls-cert", f.tls_cert, "This master's client certificate (PEM)");
  g->add_option("--tls-key", f.tls_key, "This master's private key (PEM)");
  g->add_option("--verify-rounds", f.verify_rounds,
                "Freivalds/projection check rounds per offloaded result (docs/integrity.md): a "
                "wrong result passes t rounds with probability <= (1/2)^t (convs (3/4)^t); 0: "
                "results are used unchecked")
      ->check(CLI::Range(0, 64))
      ->capture_default_str();
  g->add_option("--on-integrity-failure", f.on_integrity_failure,
                "retry: re-send once, then compute in the TEE and quarantine the worker; local: "
                "compute in the TEE at once; abort: stop the run")
      ->check(CLI::IsMember({"retry", "local", "abort"}))
      ->capture_default_str();
  g->add_option("--fault", f.fault,
                "TESTING AID: the embedded worker corrupts results on purpose, MODE[:F[:SEED]] "
                "with MODE random|perturb-one|pair|sign-flip|rescale|stale|swap|zeros|wrong-shape "
                "and F the fraction of results (docs/integrity.md)");
}

ComputeSession make_compute_session(const train::TrainOptions& o, const OffloadFlags& f,
                                    Progress& progress) {
  ComputeSession s;
  if (o.mode == "plain") {
    s.add_to_summary = [](nlohmann::json& j) { j["tee"] = "sim"; };
    return s;
  }
  if (o.mode != "tempo") throw std::invalid_argument("unknown --mode " + o.mode);
  const RecordViewSteps record_steps = RecordViewSteps::parse(f.record_view_steps);
  if (!record_steps.all() && (f.record_view_dir.empty() || !f.workers.empty()))
    throw std::invalid_argument(
        "--record-view-steps applies to the embedded worker's --record-view (a remote worker "
        "records with its own --record-view)");
  std::vector<offload::WorkerPool::Member> members;
  std::string worker_kind = "embedded";
  std::shared_ptr<worker::EmbeddedWorker> embedded;
  if (f.workers.empty()) {
    worker::WorkerOptions wo;
    wo.backend = f.worker_backend;
    wo.precision = f.worker_precision;
    wo.threads = f.worker_threads;
    wo.limits.max_cache_bytes = f.max_cache_bytes;
    wo.record_view_dir = f.record_view_dir;
    wo.fault = f.fault;
    embedded = std::make_shared<worker::EmbeddedWorker>(
        wo, worker::parse_dispatch(f.worker_dispatch, f.worker_backend));
    if (!record_steps.all()) {
      // Between steps no product is in flight: the trainer has awaited every result of a step
      // before its optimizer update, so the pause applies to whole steps.
      worker::ViewRecorder* recorder = embedded->worker().recorder();
      s.before_step = [recorder, record_steps](int64_t step, int64_t total) {
        recorder->set_paused(!record_steps.contains(step, total));
      };
      s.before_evaluation = [recorder, record_steps] {
        recorder->set_paused(!record_steps.records_evaluation());
      };
      recorder->set_paused(true);
    }
    members.push_back({"embedded", embedded, nullptr});
  } else {
    if (!f.fault.empty())
      throw std::invalid_argument(
          "--fault applies to the embedded worker only (start the "
          "remote worker with its own fault option)");
    const remote::TlsFiles tls{f.tls_ca, f.tls_cert, f.tls_key};
    for (const std::string& address : f.workers) {
      remote::RemoteWorkerOptions ro;
      ro.address = address;
      ro.tls = tls;
      ro.request_timeout =
          std::chrono::milliseconds(static_cast<int64_t>(f.worker_timeout_s * 1000));
      auto first = std::make_shared<remote::RemoteWorkerChannel>(ro);
      require_accepted_precision(address, first->capabilities(), f.worker_precision);
      progress.message("tempo: worker " + address + " session " + first->session_id() + " (" +
                       first->capabilities().backend + ", " + first->capabilities().device + ")");
      // A worker that died is re-admitted with a new session when it answers again.
      remote::RemoteWorkerOptions again = ro;
      again.connect_timeout = std::chrono::milliseconds(2000);
      members.push_back(
          {address, first,
           [again, address, accepted = f.worker_precision]() -> std::shared_ptr<WorkerChannel> {
             auto channel = std::make_shared<remote::RemoteWorkerChannel>(again);
             require_accepted_precision(address, channel->capabilities(), accepted);
             return channel;
           }});
    }
    worker_kind = (f.workers.size() == 1 ? "remote " + f.workers[0]
                                         : std::to_string(f.workers.size()) + " remote workers") +
                  (tls.enabled() ? " (mutual TLS)" : " (plaintext)");
  }
  offload::WorkerPoolOptions pool_options;
  pool_options.log = [](const std::string& line) {
    std::fprintf(stderr, "tempo: %s\n", line.c_str());
  };
  auto pool = std::make_shared<offload::WorkerPool>(std::move(members), pool_options);
  if (o.checkpoint_dir.empty() && f.fallback == "stop" && !f.workers.empty())
    progress.message(
        "tempo: note: without --checkpoint-dir, losing every worker stops the run "
        "without a checkpoint (--fallback stop)");

  offload::OffloadPolicy policy;
  policy.conv_mode = offload::parse_conv_mode(f.conv_mode);
  policy.obfuscation.sigma = f.sigma;
  policy.obfuscation.patch_distribution = f.patch_scales == "power-of-two"
                                              ? crypto::ScaleDistribution::kPowerOfTwo
                                              : crypto::ScaleDistribution::kRandomMantissa;
  policy.keep_in_tee = {f.keep_in_tee.begin(), f.keep_in_tee.end()};
  policy.keep_attention_in_tee = f.attention_in_tee;
  policy.conv_mode_exceptions = {f.channel_mode_layers.begin(), f.channel_mode_layers.end()};
  policy.keep_first_in_tee = !f.offload_first_layer;
  policy.keep_head_in_tee = !f.offload_head;
  policy.integrity.rounds = f.verify_rounds;
  policy.integrity.on_failure = integrity::parse_failure_action(f.on_integrity_failure);
  policy.integrity.precision = integrity::parse_precision(f.worker_precision);
  policy.fallback = offload::parse_fallback(f.fallback);
  policy.pipeline_chunks = f.pipeline_chunks;
  auto engine = std::make_shared<offload::OffloadEngine>(pool, policy);
  auto placement = std::make_shared<std::vector<offload::PlacedLayer>>();
  const protocol::Capabilities caps = pool->capabilities();
  const std::string dispatch = !embedded
                                   ? ""
                                   : (embedded->dispatch() == worker::EmbeddedDispatch::kInline
                                          ? ", requests run on the master's thread"
                                          : ", requests run on its own thread");
  progress.message("tempo: " + worker_kind + " (" + caps.backend + ", " + caps.device + dispatch +
                   "); conv mode " + f.conv_mode + ", sigma " + std::to_string(f.sigma));
  s.assigner = [engine, placement, &progress, f](nn::Module& model, const Shape& batch_shape) {
    *placement = engine->apply(model);
    int offloaded = 0;
    for (const auto& p : *placement) offloaded += p.offloaded;
    progress.message("tempo: " + std::to_string(offloaded) + " of " +
                     std::to_string(placement->size()) + " product layers offloaded");
    if (f.privacy_report)
      print_privacy_report(model, batch_shape, *placement, engine->policy(), progress);
  };
  s.add_to_summary = [engine, pool, embedded, placement, f, worker_kind](nlohmann::json& j) {
    j["tee"] = "sim";
    j["worker"] = worker_kind;
    j["conv_mode"] = f.conv_mode;
    j["sigma"] = f.sigma;
    j["patch_scales"] = f.patch_scales;
    int offloaded = 0;
    for (const auto& p : *placement) offloaded += p.offloaded;
    j["offloaded_layers"] = offloaded;
    const char* omp_wait =
        std::getenv("OMP_WAIT_POLICY");  // NOLINT(concurrency-mt-unsafe): read-only
    j["omp_wait_policy"] = omp_wait ? omp_wait : "default";
    j["traffic"] = engine->stats().to_json(f.traffic_report);
    j.update(engine->integrity().to_json());  // integrity_checks, integrity_failures, ...
    if (embedded) {
      j["worker_dispatch"] = worker::dispatch_name(embedded->dispatch());
      j["faults_injected"] = embedded->counters().faults_injected;
      j["worker_busy_seconds"] = double(embedded->counters().busy_ns) * 1e-9;
    }
    const auto c = pool->counters();
    j["workers"] = {{"count", pool->size()},
                    {"state", pool->describe()},
                    {"resent_requests", c.resent},
                    {"reuploaded_operands", c.reuploaded},
                    {"worker_losses", c.deaths},
                    {"readmissions", c.readmissions},
                    {"pipeline_chunks", f.pipeline_chunks}};
  };
  s.keep_alive =
      std::make_shared<std::pair<std::shared_ptr<void>, std::shared_ptr<void>>>(pool, engine);
  return s;
}

}  // namespace tempo::cli
