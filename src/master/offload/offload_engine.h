// The offload engine: runs a layer's products on an untrusted worker, blinded (PROTOCOL.md 2-4).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/worker_channel.h"
#include "master/crypto/batched_matmul_obfuscator.h"
#include "master/crypto/conv_channel_obfuscator.h"
#include "master/crypto/matmul_obfuscator.h"
#include "master/crypto/patch_conv_obfuscator.h"
#include "master/integrity/integrity_monitor.h"
#include "master/integrity/result_check.h"
#include "master/nn/module.h"
#include "master/offload/offload_policy.h"
#include "master/offload/offload_stats.h"
#include "master/offload/worker_pool.h"

namespace tempo::offload {

/// Owns the obfuscators and the per-layer Computes that send blinded products to the workers.
///
/// Several workers (a WorkerPool): every offloaded operation is split by batch into shards, in
/// proportion to the workers' measured throughput (policy.pipeline_chunks shards per worker), and
/// each shard is blinded under its own key; weight gradients of the shards are summed here. All
/// shards are sent before the first result is awaited, so blinding the next shard, the transfer,
/// the workers' products and unblinding the previous shard overlap. A worker lost mid-operation
/// costs nothing but time (the pool re-sends its work); with no worker left the product runs in
/// the TEE (policy.fallback kLocal) or the run stops with WorkersUnavailableError (kStop).
///
/// Per product, in the forward pass: a fresh key, both operands blinded, the product sent, the
/// result decrypted. In training the worker caches X' and W' under handles, and the backward pass
/// sends only the output gradient, blinded twice under keys shifted from the forward key (one for
/// dX against the cached W', one for dW against the cached X'); the second backward request frees
/// both handles. Both backward requests are queued before either result is awaited, so the worker
/// computes dX' while the master blinds dY for dW.
///
/// Integrity (PROTOCOL.md section 5): with policy.integrity.rounds > 0 every result is checked on
/// the master's own copies of the blinded operands before it is decrypted (submit() keeps them;
/// receive_verified() checks). A result that fails is never used: it is re-sent once, computed in
/// the TEE, or the run aborts, by policy; see integrity::FailureAction. Once quarantined, the
/// worker gets no further request and every product runs in the TEE.
///
/// Traffic accounting: `min_bytes` counts what the protocol cannot avoid (forward: X', W' and Y';
/// backward: dY'1, dY'2, dX', dW'), so bytes_sent + bytes_received over min_bytes is the overhead
/// of the transport (1.0 for the embedded worker).
class OffloadEngine {
 public:
  /// One worker that the caller owns (the embedded worker, tests).
  OffloadEngine(WorkerChannel& worker, OffloadPolicy policy);
  OffloadEngine(std::shared_ptr<WorkerPool> workers, OffloadPolicy policy);
  ~OffloadEngine();
  OffloadEngine(const OffloadEngine&) = delete;
  OffloadEngine& operator=(const OffloadEngine&) = delete;

  /// Places every product layer of `model` by the policy: offloaded layers get a Compute of this
  /// engine, the others the plain one. Returns the placement, in model order.
  std::vector<PlacedLayer> apply(nn::Module& model);

  const OffloadPolicy& policy() const { return policy_; }
  OffloadStats& stats() { return stats_; }
  WorkerPool& workers() { return *pool_; }

  /// Sends `request` to worker `hint` of the pool (or wherever its cached operands are).
  /// Thread-safe.
  WorkerPool::Pending send(protocol::Request request, int hint = 0);
  /// Waits and returns the blinded result; throws std::runtime_error naming the layer and the
  /// worker's message when the worker rejects it, WorkersUnavailableError when no worker is left.
  BlindedTensor receive(WorkerPool::Pending& pending, const std::string& layer, const char* what);
  /// The batch split for an operation of `rows` rows (samples or matrix rows).
  std::vector<WorkerPool::Shard> plan_shards(int64_t rows) {
    return pool_->plan_shards(rows, policy_.pipeline_chunks);
  }
  protocol::Handle new_handle() { return next_handle_.fetch_add(1); }

  /// An offloaded operation in flight, with what the master needs to check and re-send it.
  struct InFlight {
    WorkerPool::Pending response;
    integrity::OperationSpec spec;
    BlindedTensor a, b;  ///< the master's references to the blinded operands (shared storage)
    /// Optional faster projections of a and b for the check (integrity::OperandProjection), and
    /// how far they may be from the operands' own (integrity::ProductCheck's projection_error).
    integrity::OperandProjection project_a, project_b;
    double projection_error = 0.0;
    /// Vectors drawn for the first check of the result before its operands were blinded
    /// (integrity::PreparedCheck; empty: the check draws them). A re-sent request's check draws
    /// fresh ones.
    std::vector<double> preset_signs;
    int64_t sent_bytes = 0;
    int64_t result_bytes = 0;  ///< set on receipt: the size of the worker's (first) result
    bool lost = false;         ///< set by receive_verified: no worker was left to compute it
  };
  /// Sends `request`, whose operands (inline or cached on the worker) are `a` and `b`, to worker
  /// `hint` (see send()).
  InFlight submit(protocol::Request request, BlindedTensor a, BlindedTensor b, int hint = 0);
  /// Awaits and checks the result of `op` (prepares the check first, so that the master's half of
  /// it overlaps the worker's computation). Returns the verified blinded result, or std::nullopt
  /// when the caller must compute the operation in the TEE instead (the failure was logged and
  /// counted; `op.lost` tells that no worker was left). Throws integrity::IntegrityError under
  /// FailureAction::kAbort, std::runtime_error when the worker rejects the request,
  /// WorkersUnavailableError when no worker is left under Fallback::kStop. Without checks
  /// (rounds 0) it returns the result as is.
  std::optional<BlindedTensor> receive_verified(InFlight& op, const std::string& layer,
                                                const char* what);

  /// Decrypts a blinded result: `projection` null for a verified result; otherwise the function
  /// must also fill it from the result's rows (crypto::RowProjection), which are not verified yet.
  using FusedDecrypt =
      std::function<Tensor(const BlindedTensor& result, const crypto::RowProjection* projection)>;
  /// receive_verified() and decryption in one, for a (batched) product whose decryption kernel
  /// can project the result's rows for the check as it reads them: saves the check's own pass
  /// over the result. The plaintext is returned only once the check has passed (otherwise the
  /// retried, verified result is decrypted); std::nullopt and the exceptions as receive_verified.
  std::optional<Tensor> receive_decrypted(InFlight& op, const std::string& layer, const char* what,
                                          const FusedDecrypt& decrypt);

  /// Checking enabled (rounds > 0): the Computes then keep the operands checks need.
  bool verifying() const { return integrity_.enabled(); }
  /// True when the next product must run in the TEE: every worker quarantined, or none live under
  /// Fallback::kLocal (each call counts one local product). Throws WorkersUnavailableError when
  /// none is live under Fallback::kStop.
  bool must_run_locally();
  /// Some worker was quarantined (it returned a wrong result).
  bool quarantined() const { return integrity_.quarantined(); }
  integrity::IntegrityMonitor& integrity() { return integrity_; }

  const crypto::MatmulObfuscator& matmul() const { return matmul_; }
  const crypto::PatchConvObfuscator& patch_conv() const { return patch_conv_; }
  const crypto::ConvChannelObfuscator& channel_conv() const { return channel_conv_; }
  const crypto::BatchedMatmulObfuscator& batched_matmul() const { return batched_; }

 private:
  /// A result that cannot be had from any worker: nullopt under Fallback::kLocal, else throws.
  std::optional<BlindedTensor> no_worker(InFlight& op, const std::string& layer, const char* what,
                                         const std::string& why);
  /// Prepares `check` (before waiting, so that it overlaps the worker's computation), then
  /// awaits the result, unverified.
  std::optional<BlindedTensor> receive_checkable(InFlight& op, const std::string& layer,
                                                 const char* what,
                                                 std::optional<integrity::ResultCheck>& check);
  /// Acts on a failed check under the --on-integrity-failure policy: a re-sent and verified
  /// result, or std::nullopt (compute in the TEE); throws under kAbort.
  std::optional<BlindedTensor> after_failed_check(InFlight& op,
                                                  std::optional<integrity::ResultCheck>& check,
                                                  const integrity::CheckOutcome& outcome,
                                                  const std::string& layer, const char* what);

  std::shared_ptr<WorkerPool> pool_;
  OffloadPolicy policy_;
  crypto::MatmulObfuscator matmul_;
  crypto::PatchConvObfuscator patch_conv_;
  crypto::ConvChannelObfuscator channel_conv_;
  crypto::BatchedMatmulObfuscator batched_;
  OffloadStats stats_;
  integrity::IntegrityMonitor integrity_;
  std::atomic<protocol::Handle> next_handle_{1};
  std::atomic<uint64_t> next_request_{1};
  std::atomic<bool> fallback_logged_{false};
  std::vector<std::unique_ptr<nn::Compute>> computes_;
};

}  // namespace tempo::offload
