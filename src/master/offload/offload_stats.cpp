#include "master/offload/offload_stats.h"

namespace tempo::offload {

void OffloadStats::add(const std::string& layer, int64_t sent, int64_t received,
                       int64_t min_bytes) {
  std::lock_guard lock(mu_);
  auto& t = layers_[layer];
  t.bytes_sent += sent;
  t.bytes_received += received;
  t.min_bytes += min_bytes;
  ++t.requests;
}

std::map<std::string, LayerTraffic> OffloadStats::snapshot() const {
  std::lock_guard lock(mu_);
  return layers_;
}

LayerTraffic OffloadStats::total() const {
  std::lock_guard lock(mu_);
  LayerTraffic sum;
  for (const auto& [_, t] : layers_) {
    sum.bytes_sent += t.bytes_sent;
    sum.bytes_received += t.bytes_received;
    sum.requests += t.requests;
    sum.min_bytes += t.min_bytes;
  }
  return sum;
}

void OffloadStats::reset() {
  std::lock_guard lock(mu_);
  layers_.clear();
  for (auto& ns : phase_ns_) ns = 0;
}

nlohmann::json OffloadStats::to_json(bool per_layer) const {
  const LayerTraffic t = total();
  nlohmann::json j = {{"bytes_sent", t.bytes_sent},
                      {"bytes_received", t.bytes_received},
                      {"requests", t.requests},
                      {"min_bytes", t.min_bytes},
                      {"seconds",
                       {{"blind", seconds(OffloadPhase::kBlind)},
                        {"wait", seconds(OffloadPhase::kWait)},
                        {"unblind", seconds(OffloadPhase::kUnblind)}}}};
  if (per_layer) {
    nlohmann::json layers = nlohmann::json::object();
    for (const auto& [name, l] : snapshot())
      layers[name] = {{"bytes_sent", l.bytes_sent},
                      {"bytes_received", l.bytes_received},
                      {"requests", l.requests},
                      {"min_bytes", l.min_bytes}};
    j["layers"] = layers;
  }
  return j;
}

}  // namespace tempo::offload
