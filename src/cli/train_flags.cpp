#include "cli/train_flags.h"

#include <stdexcept>

#include "cli/privacy_report.h"
#include "common/remote/remote_worker_channel.h"
#include "master/offload/offload_engine.h"
#include "worker/embedded_worker.h"

namespace tempo::cli {

void add_train_flags(CLI::App& cmd, train::TrainOptions& o) {
  cmd.add_option("--model", o.model, "mlp | cnn | resnet18 | resnet50 | vit-tiny | vit-s4")
      ->capture_default_str();
  cmd.add_option("--dataset", o.dataset, "fashion-mnist | cifar10 | synthetic")->capture_default_str();
  cmd.add_option("--data-dir", o.data_dir,
                 "Dataset directory (fashion-mnist default: /usr/share/datasets/fashion-mnist; "
                 "cifar10: the directory with data_batch_*.bin)");
  cmd.add_option("--limit-train", o.limit_train, "Train on the first N samples only (0: all)");
  cmd.add_option("--limit-test", o.limit_test, "Evaluate on the first N test samples only (0: all)");
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
  g->add_option("--sigma", f.sigma, "Scales are powers of two in [2^-sigma, 2^sigma]")
      ->check(CLI::Range(0, 60))
      ->capture_default_str();
  g->add_option("--keep-in-tee", f.keep_in_tee,
                "Keep this layer (module path or prefix, e.g. layer4) in the TEE; repeatable");
  g->add_option("--channel-mode-layer", f.channel_mode_layers,
                "Run this conv (path or prefix) in the other conv mode; repeatable");
  g->add_flag("--offload-first-layer", f.offload_first_layer,
              "Offload the first layer too (by default raw inputs never leave the TEE)");
  g->add_flag("--offload-head", f.offload_head,
              "Offload the classifier head too (by default logits stay in the TEE)");
  g->add_option("--worker-threads", f.worker_threads, "Threads of the embedded worker (0: all)");
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
                "Offload to the `tempo worker` at HOST:PORT instead of the embedded worker");
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
  std::shared_ptr<WorkerChannel> channel;
  std::string worker_kind = "embedded";
  if (f.workers.size() > 1)
    throw std::invalid_argument("sharding across several workers is not implemented yet");
  if (f.workers.empty()) {
    worker::WorkerOptions wo;
    wo.backend = "cpu";
    wo.threads = f.worker_threads;
    wo.limits.max_cache_bytes = f.max_cache_bytes;
    wo.record_view_dir = f.record_view_dir;
    wo.fault = f.fault;
    channel = std::make_shared<worker::EmbeddedWorker>(wo);
  } else {
    if (!f.fault.empty())
      throw std::invalid_argument("--fault applies to the embedded worker only (start the "
                                  "remote worker with its own fault option)");
    remote::RemoteWorkerOptions ro;
    ro.address = f.workers[0];
    ro.tls = {f.tls_ca, f.tls_cert, f.tls_key};
    auto remote_channel = std::make_shared<remote::RemoteWorkerChannel>(ro);
    worker_kind = "remote " + ro.address + (ro.tls.enabled() ? " (mutual TLS)" : " (plaintext)");
    progress.message("tempo: worker " + ro.address + " session " + remote_channel->session_id());
    channel = remote_channel;
  }

  offload::OffloadPolicy policy;
  policy.conv_mode = offload::parse_conv_mode(f.conv_mode);
  policy.obfuscation.sigma = f.sigma;
  policy.keep_in_tee = {f.keep_in_tee.begin(), f.keep_in_tee.end()};
  policy.conv_mode_exceptions = {f.channel_mode_layers.begin(), f.channel_mode_layers.end()};
  policy.keep_first_in_tee = !f.offload_first_layer;
  policy.keep_head_in_tee = !f.offload_head;
  policy.integrity.rounds = f.verify_rounds;
  policy.integrity.on_failure = integrity::parse_failure_action(f.on_integrity_failure);
  auto engine = std::make_shared<offload::OffloadEngine>(*channel, policy);
  auto placement = std::make_shared<std::vector<offload::PlacedLayer>>();
  progress.message("tempo: " + worker_kind + " worker (" + channel->capabilities().backend + ", " +
                   channel->capabilities().device + "); conv mode " + f.conv_mode + ", sigma " +
                   std::to_string(f.sigma));
  s.assigner = [engine, placement, &progress, f](nn::Module& model, const Shape& batch_shape) {
    *placement = engine->apply(model);
    int offloaded = 0;
    for (const auto& p : *placement) offloaded += p.offloaded;
    progress.message("tempo: " + std::to_string(offloaded) + " of " +
                     std::to_string(placement->size()) + " product layers offloaded");
    if (f.privacy_report)
      print_privacy_report(model, batch_shape, *placement, engine->policy(), progress);
  };
  s.add_to_summary = [engine, channel, placement, f, worker_kind](nlohmann::json& j) {
    j["tee"] = "sim";
    j["worker"] = worker_kind;
    j["conv_mode"] = f.conv_mode;
    j["sigma"] = f.sigma;
    int offloaded = 0;
    for (const auto& p : *placement) offloaded += p.offloaded;
    j["offloaded_layers"] = offloaded;
    j["traffic"] = engine->stats().to_json(f.traffic_report);
    j.update(engine->integrity().to_json());  // integrity_checks, integrity_failures, ...
    if (auto* embedded = dynamic_cast<worker::EmbeddedWorker*>(channel.get()))
      j["faults_injected"] = embedded->counters().faults_injected;
  };
  s.keep_alive = std::make_shared<std::pair<std::shared_ptr<void>, std::shared_ptr<void>>>(
      channel, engine);
  return s;
}

}  // namespace tempo::cli
