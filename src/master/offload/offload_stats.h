// Traffic and operation counters of the offload engine, per layer.
#pragma once

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

/// Thread-safe accumulation of LayerTraffic by layer path.
class OffloadStats {
 public:
  void add(const std::string& layer, int64_t sent, int64_t received, int64_t min_bytes);
  std::map<std::string, LayerTraffic> snapshot() const;
  LayerTraffic total() const;
  void reset();
  /// {"bytes_sent":..., "bytes_received":..., "requests":..., "layers": {path: {...}}}
  nlohmann::json to_json(bool per_layer) const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, LayerTraffic> layers_;
};

}  // namespace tempo::offload
