// Sealed checkpoints with a monotonic version and rollback detection.
//
// The payload holds the checkpoint's JSON metadata and its tensors (u64 meta length | meta |
// u64 count | per tensor: u32 name length, name, u32 rank, i64 dims[rank], f32 data[numel]);
// the version is in the authenticated header. Next to CKPT lives CKPT.state: the latest version
// written and that file's id, authenticated with HMAC-SHA256 under a key derived from the data
// key and CKPT's file name. Loading a checkpoint older than the recorded version, or one with the
// recorded version but another file id, is a rollback and is refused.
// Limit: an attacker who replaces BOTH files with older copies is not detected; that needs a
// monotonic counter outside the disk (docs/deployment.md).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>

#include "master/tee/primitives.h"
#include "master/tee/sealed_file.h"
#include "master/train/checkpoint.h"

namespace tempo::tee {

/// The rollback-protection record of a checkpoint.
struct CheckpointState {
  uint64_t version = 0;
  std::array<uint8_t, 16> file_id{};
};

/// CKPT.state for a checkpoint at CKPT.
std::filesystem::path state_path_for(const std::filesystem::path& checkpoint);

/// The recorded state of `checkpoint`, or nullopt when there is no state file. Throws
/// SealedFileError when the state file exists but is malformed or fails authentication.
std::optional<CheckpointState> read_checkpoint_state(const std::filesystem::path& checkpoint,
                                                     const Key& key);

/// Seals `ckpt` into `path` (atomically) with `version`, then records it in the state file
/// (atomically). `version` must exceed the recorded one (std::invalid_argument otherwise).
void save_sealed_checkpoint(const std::filesystem::path& path, const Key& key,
                            const train::Checkpoint& ckpt, uint64_t version,
                            SealedKind kind = SealedKind::kCheckpoint);

struct LoadedCheckpoint {
  train::Checkpoint checkpoint;
  SealedHeader header;
};

/// Decrypts, authenticates and parses a sealed checkpoint (kind checkpoint or model). With
/// `check_rollback`, also requires the state file and refuses a rollback. Throws SealedFileError
/// naming the file and the failed check.
LoadedCheckpoint load_sealed_checkpoint(const std::filesystem::path& path, const Key& key,
                                        bool check_rollback = true);

/// True when `path` starts with the sealed-file magic (a cheap test, no authentication).
bool looks_sealed(const std::filesystem::path& path);

}  // namespace tempo::tee
