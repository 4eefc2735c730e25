// Checkpoints: a versioned, checksummed file of JSON metadata and named fp32 tensors, and the
// helpers that fill one from a model and an optimizer and restore them from it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "master/core/random.h"
#include "master/core/tensor.h"
#include "master/nn/module.h"
#include "master/optim/optimizer.h"

namespace tempo::train {

/// File layout (little-endian), version 1:
///   "TEMPOCKP" | u32 version | u32 reserved (0) | u64 file size | u64 metadata length | metadata
///   (UTF-8 JSON) | u64 tensor count | per tensor: u32 name length, name, u32 rank, i64 dims[rank],
///   f32 data[numel] | BLAKE2b-256 (libsodium crypto_generichash) of every byte before it.
inline constexpr char kCheckpointMagic[8] = {'T', 'E', 'M', 'P', 'O', 'C', 'K', 'P'};
inline constexpr uint32_t kCheckpointVersion = 1;

/// The content of a checkpoint file. Tensor names are unique.
struct Checkpoint {
  nlohmann::json meta;  ///< model name, step, epoch, command-line args, RNG states, ...
  std::vector<std::pair<std::string, Tensor>> tensors;

  /// The tensor called `name`, or null.
  const Tensor* find(const std::string& name) const;
};

/// Writes `ckpt` to `path` atomically (see AtomicFile): on failure the previous file is intact.
/// Throws std::invalid_argument for a checkpoint that cannot be written (duplicate or empty
/// names, tensors without storage) and std::runtime_error for I/O errors.
void save_checkpoint(const std::filesystem::path& path, const Checkpoint& ckpt);

/// Reads and fully validates a checkpoint. Throws std::runtime_error whose message names the file
/// and the failed check: cannot open, bad magic, unsupported version, truncated, trailing bytes,
/// checksum mismatch, malformed JSON metadata, malformed tensor table.
Checkpoint load_checkpoint(const std::filesystem::path& path);

/// Name prefixes of the model's and the optimizer's tensors inside a checkpoint. '/' never
/// appears in a module path, so the prefixes cannot collide with a layer name.
inline constexpr const char* kModelPrefix = "model/";
inline constexpr const char* kOptimizerPrefix = "optim/";

/// Adds every parameter and buffer of `model` as "model/<path>" (sharing storage, no copy).
void add_model_state(Checkpoint& ckpt, nn::Module& model);
/// Adds the optimizer's tensors as "optim/<slot>/<path>" and its scalars as meta["optimizer"].
void add_optimizer_state(Checkpoint& ckpt, const optim::Optimizer& optimizer);

/// Copies the checkpoint's "model/" tensors into `model`'s parameters and buffers. Strict: every
/// parameter and buffer must be present with its shape, and no other "model/" tensor may exist.
/// Checks everything before copying anything; throws std::runtime_error naming the missing,
/// unexpected or mismatched tensor.
void restore_model_state(const Checkpoint& ckpt, nn::Module& model);
/// Restores the optimizer from meta["optimizer"] and the "optim/" tensors (strict, as above).
void restore_optimizer_state(const Checkpoint& ckpt, optim::Optimizer& optimizer);

/// An RNG state as a JSON array of four unsigned integers, and back (throws std::runtime_error
/// on anything else).
nlohmann::json rng_state_to_json(const Rng::State& state);
Rng::State rng_state_from_json(const nlohmann::json& j);

}  // namespace tempo::train
