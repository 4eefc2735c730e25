#include "master/offload/offload_engine.h"

#include <chrono>
#include <cmath>
#include <stdexcept>
#include <utility>

#include "master/core/uninitialized_vector.h"
#include "master/offload/tempo_compute.h"

namespace tempo::offload {

namespace {
using Clock = std::chrono::steady_clock;
int64_t elapsed_ns(Clock::time_point since) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - since).count();
}
}  // namespace

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
    } else if (policy_.keep_attention_in_tee && p.type == "MultiHeadSelfAttention") {
      p.reason = "attention products kept in the TEE by policy";
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
    op.result_bytes = r.result.bytes();
    return std::move(r.result);
  }
  std::optional<integrity::ResultCheck> check;
  std::optional<BlindedTensor> result = receive_checkable(op, layer, what, check);
  if (!result) return std::nullopt;
  const auto start = Clock::now();
  const integrity::CheckOutcome outcome = check->verify(*result);
  integrity_.add_check_time(elapsed_ns(start));
  if (outcome.passed) {
    integrity_.passed();
    return result;
  }
  return after_failed_check(op, check, outcome, layer, what);
}

std::optional<Tensor> OffloadEngine::receive_decrypted(InFlight& op, const std::string& layer,
                                                       const char* what,
                                                       const FusedDecrypt& decrypt) {
  if (!integrity_.enabled() ||
      (op.spec.op != protocol::Op::kMatMul && op.spec.op != protocol::Op::kBatchedMatMul)) {
    std::optional<BlindedTensor> result = receive_verified(op, layer, what);
    if (!result) return std::nullopt;
    return decrypt(*result, nullptr);
  }
  std::optional<integrity::ResultCheck> check;
  std::optional<BlindedTensor> result = receive_checkable(op, layer, what, check);
  if (!result) return std::nullopt;
  const integrity::ProductCheck& product = *check->product();
  integrity::CheckOutcome outcome = product.check_shape(*result);
  if (outcome.passed) {
    // The decryption kernel projects each row of the result as it reads it; the plaintext it
    // wrote is used only if the projections then pass.
    const int64_t m = product.rows(), entries = product.batch();
    UninitializedVector<double> cv(static_cast<size_t>(entries * product.rounds() * m));
    UninitializedVector<double> c_abs(static_cast<size_t>(entries * m));
    const crypto::RowProjection projection{product.signs(), product.rounds(), m, cv.data(),
                                           c_abs.data()};
    Tensor plaintext = decrypt(*result, &projection);
    const auto start = Clock::now();
    outcome = product.verify_projected(cv.data(), c_abs.data());
    // The kernel's fp32 lanes overflow on rows whose absolute sum passes FLT_MAX; the
    // projection in double decides (the same vectors: a non-finite C fails it too).
    if (!outcome.passed && !std::isfinite(outcome.worst_ratio)) outcome = product.verify(*result);
    integrity_.add_check_time(elapsed_ns(start));
    if (outcome.passed) {
      integrity_.passed();
      return plaintext;
    }
  }
  std::optional<BlindedTensor> retried = after_failed_check(op, check, outcome, layer, what);
  if (!retried) return std::nullopt;
  return decrypt(*retried, nullptr);
}

std::optional<BlindedTensor> OffloadEngine::receive_checkable(
    InFlight& op, const std::string& layer, const char* what,
    std::optional<integrity::ResultCheck>& check) {
  const integrity::IntegrityOptions& opt = integrity_.options();
  const auto start = Clock::now();
  check.emplace(op.spec, op.a, op.b, opt.rounds, opt.precision, op.project_a, op.project_b,
                std::exchange(op.preset_signs, {}), op.projection_error);
  integrity_.add_check_time(elapsed_ns(start));
  protocol::Response response = op.response.get();
  if (response.unavailable) return no_worker(op, layer, what, response.error);
  if (!response.ok)
    throw std::runtime_error("worker rejected " + std::string(what) + " of layer " + layer + ": " +
                             response.error);
  op.result_bytes = response.result.bytes();
  return std::move(response.result);
}

std::optional<BlindedTensor> OffloadEngine::after_failed_check(
    InFlight& op, std::optional<integrity::ResultCheck>& check,
    const integrity::CheckOutcome& outcome, const std::string& layer, const char* what) {
  const integrity::IntegrityOptions& opt = integrity_.options();
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
  check.emplace(op.spec, op.a, op.b, opt.rounds, opt.precision, op.project_a, op.project_b,
                std::vector<double>(), op.projection_error);
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
  const integrity::CheckOutcome again = check->verify(r.result);
  if (again.passed) {
    integrity_.passed();
    return std::move(r.result);
  }
  integrity_.failed({layer, what, 2, again.worst_ratio, again.reason, "local+quarantine"});
  integrity_.quarantine(pool_->quarantine(pending.worker()),
                        "layer " + layer + ", " + what + " failed its check twice");
  integrity_.computed_locally();
  return std::nullopt;
}

}  // namespace tempo::offload
