// Traffic and operation counters of the offload engine, per layer.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

namespace tempo::offload {

struct LayerTraffic {
  int64_t bytes_sent = 0;      ///< blinded tensors the master sent to workers
  int64_t bytes_received = 0;  ///< blinded results it received
  int64_t requests = 0;
  int64_t min_bytes = 0;  ///< what the protocol requires at least (see offload_engine.h)
};

/// Where the master's time in offloaded products goes (the pipeline's breakdown).
enum class OffloadPhase {
  kBlind,    ///< blinding operands and gradients (encryptors), and splitting the batch
  kWait,     ///< waiting for workers' results (transfer + worker compute not overlapped)
  kUnblind,  ///< unblinding results (decryptors), joining shards, summing weight gradients
};

/// Thread-safe accumulation of LayerTraffic by layer path, and of time per OffloadPhase.
class OffloadStats {
 public:
  void add_time(OffloadPhase phase, int64_t ns) { phase_ns_[static_cast<int>(phase)] += ns; }
  /// Seconds spent in `phase` so far.
  double seconds(OffloadPhase phase) const {
    return double(phase_ns_[static_cast<int>(phase)].load()) * 1e-9;
  }
  void add(const std::string& layer, int64_t sent, int64_t received, int64_t min_bytes);
  std::map<std::string, LayerTraffic> snapshot() const;
  LayerTraffic total() const;
  void reset();
  /// {"bytes_sent":..., "bytes_received":..., "requests":..., "seconds": {"blind", "wait",
  ///  "unblind"}, "layers": {path: {...}}}
  nlohmann::json to_json(bool per_layer) const;

 private:
  mutable std::mutex mu_;
  std::array<std::atomic<int64_t>, 3> phase_ns_{};
  std::map<std::string, LayerTraffic> layers_;
};

}  // namespace tempo::offload
