#include "master/offload/offload_engine.h"

#include <chrono>
#include <stdexcept>

#include "master/offload/tempo_compute.h"

namespace tempo::offload {

OffloadEngine::OffloadEngine(WorkerChannel& worker, OffloadPolicy policy)
    : OffloadEngine(WorkerPool::of(worker), std::move(policy)) {}

OffloadEngine::OffloadEngine(std::shared_ptr<WorkerPool> workers, OffloadPolicy policy)
    : pool_(std::move(workers)),
      policy_(std::move(policy)),
      matmul_(policy_.obfuscation),
      patch_conv_(policy_.obfuscation),
      channel_conv_(policy_.obfuscation),
      batched_(policy_.obfuscation),
      integrity_(policy_.integrity) {}

OffloadEngine::~OffloadEngine() = default;

std::vector<PlacedLayer> OffloadEngine::apply(nn::Module& model) {
  std::vector<nn::NamedModule> product_layers;
  for (auto& nm : nn::named_modules(model))
    if (nm.module->has_products()) product_layers.push_back(nm);
  // The first and the last layers that touch data directly: MultiHeadSelfAttention never is one
  // (its own products are between activations), so look for the first/last Linear or Conv2d.
  auto is_dense = [](const nn::NamedModule& nm) {
    return nm.module->type() == "Linear" || nm.module->type() == "Conv2d";
  };
  std::string first, last;
  for (auto& nm : product_layers)
    if (is_dense(nm)) {
      if (first.empty()) first = nm.path;
      last = nm.path;
    }

  std::vector<PlacedLayer> placed;
  for (auto& nm : product_layers) {
    PlacedLayer p;
    p.path = nm.path;
    p.type = nm.module->type();
    p.conv_mode = policy_.conv_mode;
    if (matches_prefix(nm.path, policy_.conv_mode_exceptions))
      p.conv_mode = p.conv_mode == ConvMode::kPatch ? ConvMode::kChannel : ConvMode::kPatch;
    if (policy_.keep_first_in_tee && nm.path == first) {
      p.reason = "first layer: raw inputs stay in the TEE";
    } else if (policy_.keep_head_in_tee && nm.path == last) {
      p.reason = "classifier head: logits and labels stay in the TEE";
    } else if (matches_prefix(nm.path, policy_.keep_in_tee)) {
      p.reason = "kept in the TEE by policy";
    } else {
      p.offloaded = true;
    }
    if (p.offloaded) {
      computes_.push_back(std::make_unique<TempoCompute>(*this, p.path, p.conv_mode));
      nm.module->set_compute(computes_.back().get());
    } else {
      nm.module->set_compute(&nn::plain_compute());
    }
    placed.push_back(std::move(p));
  }
  return placed;
}

WorkerPool::Pending OffloadEngine::send(protocol::Request request, int hint) {
  request.id = next_request_.fetch_add(1);
  return pool_->submit(std::move(request), hint);
}

BlindedTensor OffloadEngine::receive(WorkerPool::Pending& pending, const std::string& layer,
                                     const char* what) {
  protocol::Response r = pending.get();
  if (r.unavailable)
    throw WorkersUnavailableError("no worker could compute the " + std::string(what) +
                                  " of layer " + layer + ": " + r.error);
  if (!r.ok)
    throw std::runtime_error("worker rejected " + std::string(what) + " of layer " + layer + ": " +
                             r.error);
  return std::move(r.result);
}

bool OffloadEngine::must_run_locally() {
  if (pool_->all_quarantined()) {
    integrity_.computed_locally();
    return true;
  }
  if (pool_->live_count() > 0) return false;
  if (policy_.fallback == Fallback::kStop)
    throw WorkersUnavailableError("no worker left (" + pool_->describe() +
                                  "); --fallback stop ends the run");
  if (!fallback_logged_.exchange(true))
    integrity_.log("offload: no worker left (" + pool_->describe() +
                   "); computing in the TEE until one comes back (--fallback local)");
  integrity_.computed_without_worker();
  return true;
}

std::optional<BlindedTensor> OffloadEngine::no_worker(InFlight& op, const std::string& layer,
                                                      const char* what, const std::string& why) {
  op.lost = true;
  if (policy_.fallback == Fallback::kStop)
    throw WorkersUnavailableError("no worker could compute the " + std::string(what) +
                                  " of layer " + layer + ": " + why +
                                  " (--fallback stop ends the run)");
  if (!fallback_logged_.exchange(true))
    integrity_.log("offload: no worker left (" + why +
                   "); computing in the TEE until one comes back (--fallback local)");
  integrity_.computed_without_worker();
  return std::nullopt;
}

OffloadEngine::InFlight OffloadEngine::submit(protocol::Request request, BlindedTensor a,
                                              BlindedTensor b, int hint) {
  InFlight op;
  op.spec = integrity::OperationSpec::of(request);
  op.sent_bytes = request.a.tensor.bytes() + request.b.tensor.bytes();
  op.a = std::move(a);
  op.b = std::move(b);
  op.response = send(std::move(request), hint);
  return op;
}

std::optional<BlindedTensor> OffloadEngine::receive_verified(InFlight& op, const std::string& layer,
                                                             const char* what) {
  if (!integrity_.enabled()) {
    protocol::Response r = op.response.get();
    if (r.unavailable) return no_worker(op, layer, what, r.error);
    if (!r.ok)
      throw std::runtime_error("worker rejected " + std::string(what) + " of layer " + layer +
                               ": " + r.error);
    return std::move(r.result);
  }
  const integrity::IntegrityOptions& opt = integrity_.options();
  using Clock = std::chrono::steady_clock;
  auto elapsed_ns = [](Clock::time_point since) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - since).count();
  };
  auto start = Clock::now();
  std::optional<integrity::ResultCheck> check;
  check.emplace(op.spec, op.a, op.b, opt.rounds, opt.precision);
  integrity_.add_check_time(elapsed_ns(start));
  protocol::Response response = op.response.get();
  if (response.unavailable) return no_worker(op, layer, what, response.error);
  if (!response.ok)
    throw std::runtime_error("worker rejected " + std::string(what) + " of layer " + layer + ": " +
                             response.error);
  BlindedTensor result = std::move(response.result);
  start = Clock::now();
  integrity::CheckOutcome outcome = check->verify(result);
  integrity_.add_check_time(elapsed_ns(start));
  if (outcome.passed) {
    integrity_.passed();
    return result;
  }
  integrity::IntegrityEvent event{layer, what, 1, outcome.worst_ratio, outcome.reason, ""};
  switch (opt.on_failure) {
    case integrity::FailureAction::kAbort:
      event.action = "abort";
      integrity_.failed(event);
      throw integrity::IntegrityError("integrity check failed: layer " + layer + ", " + what +
                                      ": " + outcome.reason + " (--on-integrity-failure abort)");
    case integrity::FailureAction::kLocal:
      event.action = "local";
      integrity_.failed(std::move(event));
      integrity_.computed_locally();
      return std::nullopt;
    case integrity::FailureAction::kRetry:
      break;
  }
  // With another worker live, the liar is quarantined at once and the work goes elsewhere;
  // a lone worker gets one more chance (a transient fault) before it is.
  const int liar = op.response.worker();
  const bool others = pool_->live_count() > 1;
  event.action = others ? "retry elsewhere+quarantine" : "retry";
  integrity_.failed(std::move(event));
  integrity_.retried();
  if (others)
    integrity_.quarantine(pool_->quarantine(liar),
                          "layer " + layer + ", " + what + " failed its check");
  // The re-sent request carries both operands inline (the worker may have freed its cached
  // copies since) and caches nothing; its check draws fresh vectors.
  protocol::Request retry;
  retry.op = op.spec.op;
  retry.trans_a = op.spec.trans_a;
  retry.trans_b = op.spec.trans_b;
  retry.conv = op.spec.conv;
  retry.out_shape = op.spec.out_shape;
  retry.a = protocol::Operand::inline_tensor(op.a);
  retry.b = protocol::Operand::inline_tensor(op.b);
  check.emplace(op.spec, op.a, op.b, opt.rounds, opt.precision);
  auto pending = send(std::move(retry), liar + 1);
  protocol::Response r = pending.get();
  if (r.unavailable) return no_worker(op, layer, what, r.error);
  if (!r.ok) {
    integrity_.quarantine(
        pool_->quarantine(pending.worker()),
        "layer " + layer + ", " + what + ": the worker rejected the re-sent request: " + r.error);
    integrity_.computed_locally();
    return std::nullopt;
  }
  stats_.add(layer, op.a.bytes() + op.b.bytes(), r.result.bytes(), 0);
  outcome = check->verify(r.result);
  if (outcome.passed) {
    integrity_.passed();
    return std::move(r.result);
  }
  integrity_.failed({layer, what, 2, outcome.worst_ratio, outcome.reason, "local+quarantine"});
  integrity_.quarantine(pool_->quarantine(pending.worker()),
                        "layer " + layer + ", " + what + " failed its check twice");
  integrity_.computed_locally();
  return std::nullopt;
}

}  // namespace tempo::offload
