// A testing aid: a worker that returns wrong results on purpose (docs/integrity.md).
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <optional>
#include <random>
#include <string>

#include "common/blinded_tensor.h"
#include "common/worker_protocol.h"

namespace tempo::worker {

/// How results are corrupted. Off by default; `tempo train --fault MODE[:PARAMS]` and
/// WorkerOptions::fault turn it on to test the master's integrity checks.
enum class FaultMode {
  kNone,
  kRandom,      ///< each result, with probability F (default 0.05), gets one of the modes below
                ///< except kPair (so that every corruption is caught in every round)
  kPerturbOne,  ///< one entry moved by 3x the master's tolerance for it: caught every round
  kPair,        ///< two entries of one checked row moved by +d and -d: caught w.p. 1/2 a round
  kSignFlip,    ///< the whole result negated
  kRescale,     ///< the whole result times a factor (default 1.5)
  kStale,       ///< the result of an earlier request of the same shape (a replay)
  kSwap,        ///< answers with the previous request's result and keeps this one for the next
  kZeros,       ///< all zeros
  kWrongShape,  ///< one row too few (or one too many when there is a single row)
};

/// "MODE[:F[:X]]": MODE one of random, perturb-one, pair, sign-flip, rescale, stale, swap, zeros,
/// wrong-shape; F the fraction of results corrupted (default 1, random: 0.05); X the seed of the
/// injector's own generator (default 1), for rescale "rescale:F:FACTOR:SEED".
struct FaultSpec {
  FaultMode mode = FaultMode::kNone;
  double fraction = 1.0;
  double factor = 1.5;
  uint64_t seed = 1;

  /// Throws std::invalid_argument naming the valid modes.
  static FaultSpec parse(const std::string& text);
  std::string to_string() const;
};
const char* fault_mode_name(FaultMode mode);

/// Corrupts a fraction of a worker's results after they are computed (and validated), before
/// they are returned. Counts every result it changed: one that differs from the honest result in
/// shape or in any value (a sign flip of an all-zero result is no fault and is not counted).
/// Called under the worker's lock: not thread-safe itself; faults_injected() is.
class FaultInjector {
 public:
  explicit FaultInjector(FaultSpec spec);

  /// `a`, `b`: the operands the result was computed from (for tolerance-sized perturbations).
  void apply(const protocol::Request& r, const BlindedTensor& a, const BlindedTensor& b,
             BlindedTensor* result);

  uint64_t faults_injected() const { return faults_.load(); }
  const FaultSpec& spec() const { return spec_; }

 private:
  BlindedTensor corrupt(FaultMode mode, const protocol::Request& r, const BlindedTensor& a,
                        const BlindedTensor& b, const BlindedTensor& honest);
  std::optional<BlindedTensor> earlier_result(const Shape& shape) const;

  FaultSpec spec_;
  std::mt19937_64 rng_;
  std::deque<BlindedTensor> history_;  // recent honest results (stale, swap)
  std::optional<BlindedTensor> held_;  // swap: the result owed to the next request
  std::atomic<uint64_t> faults_{0};
};

}  // namespace tempo::worker
