#include "master/offload/offload_engine.h"

#include <stdexcept>

#include "master/offload/tempo_compute.h"

namespace tempo::offload {

OffloadEngine::OffloadEngine(WorkerChannel& worker, OffloadPolicy policy)
    : worker_(worker),
      policy_(std::move(policy)),
      matmul_(policy_.obfuscation),
      patch_conv_(policy_.obfuscation),
      channel_conv_(policy_.obfuscation),
      batched_(policy_.obfuscation) {}

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

std::future<protocol::Response> OffloadEngine::send(protocol::Request request) {
  request.id = next_request_.fetch_add(1);
  return worker_.submit(std::move(request));
}

BlindedTensor OffloadEngine::receive(std::future<protocol::Response>& pending,
                                     const std::string& layer, const char* what) {
  protocol::Response r = pending.get();
  if (!r.ok)
    throw std::runtime_error("worker rejected " + std::string(what) + " of layer " + layer + ": " +
                             r.error);
  return std::move(r.result);
}

}  // namespace tempo::offload
