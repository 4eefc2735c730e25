// Which layers the master offloads, and how (PROTOCOL.md section 7).
#pragma once

#include <set>
#include <string>
#include <vector>

#include "master/crypto/obfuscation_params.h"
#include "master/integrity/integrity_options.h"
#include "master/nn/compute.h"

namespace tempo::offload {

/// How an offloaded convolution is blinded (PROTOCOL.md section 3).
enum class ConvMode {
  kPatch,    ///< im2col patches through MM-obfuscation: hides spatial layout (default)
  kChannel,  ///< channel-level permutation/scaling of NCHW tensors: faster, spatial maps visible
};
ConvMode parse_conv_mode(const std::string& name);  ///< "patch" | "channel"
const char* to_string(ConvMode mode);

/// What the master does when no worker is left (all dead or unreachable).
enum class Fallback {
  kStop,   ///< stop the run: WorkersUnavailableError (the trainer writes a checkpoint first)
  kLocal,  ///< compute the products in the TEE until a worker comes back
};
Fallback parse_fallback(const std::string& name);  ///< "stop" | "local"

/// No worker is left to compute an offloaded product, and the policy says stop.
struct WorkersUnavailableError : nn::ComputeUnavailableError {
  using nn::ComputeUnavailableError::ComputeUnavailableError;
};

struct OffloadPolicy {
  /// Keep the first product layer (raw inputs) in the TEE: raw data never leaves it in any form.
  bool keep_first_in_tee = true;
  /// Keep the last product layer (the classifier head: logits, hence labels) in the TEE.
  bool keep_head_in_tee = true;
  /// Compute the attention products Q·K^T and A·V in the TEE (the Linear layers around them stay
  /// offloaded): a few percent of a ViT's FLOPs, but about half of its blinded bytes.
  bool keep_attention_in_tee = false;
  /// Further layers kept in the TEE, by module path ("layer1.0.conv1"; a prefix keeps a subtree).
  std::set<std::string> keep_in_tee;
  ConvMode conv_mode = ConvMode::kPatch;
  /// Convolutions to run in the other mode than conv_mode, by path or prefix.
  std::set<std::string> conv_mode_exceptions;
  crypto::ObfuscationParams obfuscation;
  /// Checks of every offloaded result (t rounds) and what a failed check leads to (section 5).
  integrity::IntegrityOptions integrity;
  Fallback fallback = Fallback::kStop;
  /// Shards per worker and operation: 2 or more overlap blinding, transfer, the worker's product
  /// and unblinding within one operation (each shard costs one more blinded copy of the weights).
  int pipeline_chunks = 1;
};

/// One product layer of a model and where the policy puts it.
struct PlacedLayer {
  std::string path;
  std::string type;  ///< "Conv2d", "Linear", "MultiHeadSelfAttention"
  bool offloaded = false;
  ConvMode conv_mode = ConvMode::kPatch;  ///< for Conv2d
  std::string reason;                     ///< why it stays in the TEE, when it does
};

/// True when `path` equals one of `prefixes` or lies below one ("layer1" covers "layer1.0.conv1").
bool matches_prefix(const std::string& path, const std::set<std::string>& prefixes);

}  // namespace tempo::offload
