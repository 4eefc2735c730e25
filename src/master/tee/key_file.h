// Data keys on disk: 32 random bytes, stored raw or as 64 hex digits.
#pragma once

#include <filesystem>

#include "master/tee/primitives.h"

namespace tempo::tee {

/// Reads a key file: exactly 32 raw bytes, or 64 hex digits with optional surrounding whitespace.
/// Throws std::runtime_error naming the file and what is wrong with it.
Key load_key_file(const std::filesystem::path& path);

/// Writes 32 fresh random bytes as hex (mode 0600). Refuses to overwrite an existing file, so a
/// key that protects sealed files is never lost by accident.
Key generate_key_file(const std::filesystem::path& path);

/// A short public identifier of a key (first 8 bytes of HMAC(key, label)): lets a reader say "wrong
/// key" instead of "corrupted file" without revealing anything usable about the key.
std::array<uint8_t, 8> key_fingerprint(const Key& key);

}  // namespace tempo::tee
