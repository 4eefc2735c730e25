// Sealed files (.tds): AES-256-GCM in authenticated chunks, for datasets, checkpoints and models.
//
// Layout (little-endian):
//   header:  "TEMPOTDS" | u32 format version (1) | u32 kind | u8 file_id[16] | u64 version |
//            u32 chunk size | u32 reserved (0) | u64 chunk count | u64 payload bytes |
//            u8 key fingerprint[8] | u32 meta length | meta (UTF-8 JSON, plaintext)
//   header tag: 16 bytes, AES-GCM over no plaintext with the header as AAD
//   chunks:  chunk count x (ciphertext of min(chunk size, what is left) bytes | 16-byte tag)
// Every file has its own key, derived from the data key and its random file id, so chunks cannot
// be moved between files. Chunk i is encrypted with nonce (u64 i | u32 final flag) and AAD
// (SHA-256(header) | u64 i | u8 final flag): chunks cannot be reordered, duplicated, dropped or
// appended, and the header (counts, sizes, version, metadata) cannot change without every tag
// failing. The header is readable without the key (metadata is authenticated, not secret).
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "master/tee/primitives.h"

namespace tempo::train {
class AtomicFile;
}

namespace tempo::tee {

inline constexpr char kSealedMagic[8] = {'T', 'E', 'M', 'P', 'O', 'T', 'D', 'S'};
inline constexpr uint32_t kSealedFormatVersion = 1;
inline constexpr uint32_t kDefaultChunkSize = uint32_t{1} << 20;
inline constexpr uint32_t kMaxChunkSize = uint32_t{64} << 20;
inline constexpr uint32_t kMaxMetaBytes = uint32_t{1} << 20;
/// Bytes of the fixed part of the header, before the metadata.
inline constexpr size_t kSealedFixedHeaderBytes = 76;

/// What a sealed file holds.
enum class SealedKind : uint32_t { kDataset = 1, kCheckpoint = 2, kModel = 3 };
std::string kind_name(SealedKind kind);

/// The authenticated header of a sealed file.
struct SealedHeader {
  SealedKind kind = SealedKind::kDataset;
  std::array<uint8_t, 16> file_id{};
  uint64_t version = 0;  ///< monotonic version (checkpoints); 0 otherwise
  uint32_t chunk_size = kDefaultChunkSize;
  uint64_t chunk_count = 0;
  uint64_t payload_bytes = 0;
  std::array<uint8_t, 8> key_fingerprint{};
  nlohmann::json meta = nlohmann::json::object();

  /// Bytes of the serialized header (without its tag).
  Bytes serialize() const;
};

/// Chunks needed for `payload_bytes` (at least one: an empty payload still has a final chunk).
uint64_t chunk_count_for(uint64_t payload_bytes, uint32_t chunk_size);

/// A sealed file failed a check. what() is "sealed file <path>: <check>: <detail>".
class SealedFileError : public std::runtime_error {
 public:
  SealedFileError(const std::string& path, const std::string& check, const std::string& detail);
  const std::string& path() const { return path_; }
  /// Short name of the failed check: "open", "magic", "format version", "kind", "header",
  /// "key", "header authentication", "length", "chunk authentication", "rollback", ...
  const std::string& check() const { return check_; }

 private:
  std::string path_, check_;
};

/// Streams a payload into a new sealed file, written atomically: the target is replaced only by
/// commit() after every payload byte was written; on any error the old file stays.
class SealedWriter {
 public:
  SealedWriter(const std::filesystem::path& target, const Key& key, SealedKind kind,
               uint64_t payload_bytes, nlohmann::json meta, uint64_t version = 0,
               uint32_t chunk_size = kDefaultChunkSize);
  ~SealedWriter();

  void write(const void* data, size_t n);
  void commit();
  const SealedHeader& header() const { return header_; }

 private:
  void seal_chunk();

  std::filesystem::path target_;
  SealedHeader header_;
  Digest header_hash_{};
  std::unique_ptr<Aes256Gcm> gcm_;
  std::unique_ptr<train::AtomicFile> file_;
  Bytes chunk_;
  uint64_t chunk_index_ = 0, written_ = 0;
};

/// Opens a sealed file and verifies, before returning: magic, format version, kind, key
/// fingerprint, header tag and the exact file length. read() then decrypts and authenticates
/// chunk by chunk; callers must not use what they read before finish() succeeded.
class SealedReader {
 public:
  SealedReader(const std::filesystem::path& path, const Key& key,
               std::optional<SealedKind> expected_kind);
  ~SealedReader();

  const SealedHeader& header() const { return header_; }
  /// Reads the next n payload bytes (throws SealedFileError on a failed chunk or past the end).
  void read(void* out, size_t n);
  /// Checks that the whole payload was read (and hence every chunk authenticated).
  void finish();

  [[noreturn]] void fail(const std::string& check, const std::string& detail) const;

 private:
  void open_chunk();

  std::string path_;
  struct FileCloser {
    void operator()(std::FILE* f) const;
  };
  std::unique_ptr<std::FILE, FileCloser> file_;
  SealedHeader header_;
  Digest header_hash_{};
  std::unique_ptr<Aes256Gcm> gcm_;
  Bytes chunk_;
  size_t chunk_pos_ = 0;
  uint64_t next_chunk_ = 0, consumed_ = 0;
};

/// Reads only the (authenticated) header of a sealed file with `key`.
SealedHeader read_sealed_header(const std::filesystem::path& path, const Key& key);

}  // namespace tempo::tee
