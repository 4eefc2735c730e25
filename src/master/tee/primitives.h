// The few cryptographic primitives the TEE layer needs, on OpenSSL (EVP): SHA-256, HMAC-SHA256,
// a key-derivation step, OS randomness and AES-256-GCM.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tempo::tee {

using Bytes = std::vector<uint8_t>;
using Digest = std::array<uint8_t, 32>;
/// A 256-bit symmetric key. Wiped on destruction.
struct Key {
  std::array<uint8_t, 32> bytes{};
  Key() = default;
  Key(const Key&) = default;
  Key& operator=(const Key&) = default;
  ~Key();
};

Digest sha256(std::span<const uint8_t> data);
Digest hmac_sha256(const Key& key, std::span<const uint8_t> data);
/// HKDF-Expand (RFC 5869) for one 32-byte block: HMAC(key, label || 0x00 || context || 0x01).
/// `key` is already uniformly random, so the Extract step is not needed.
Key derive_key(const Key& key, std::string_view label, std::span<const uint8_t> context);
/// Fills `out` from the OS CSPRNG (OpenSSL RAND_bytes); throws on failure.
void random_bytes(void* out, size_t n);
/// Constant-time equality of two equal-length buffers.
bool equal_ct(std::span<const uint8_t> a, std::span<const uint8_t> b);

std::string to_hex(std::span<const uint8_t> data);
/// Decodes hex (upper or lower case, no separators); throws std::invalid_argument naming `what`.
Bytes from_hex(std::string_view hex, std::string_view what);

inline std::span<const uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

/// AES-256-GCM with a 96-bit nonce and a 128-bit tag; one context reused for many messages.
class Aes256Gcm {
 public:
  static constexpr size_t kNonceBytes = 12;
  static constexpr size_t kTagBytes = 16;
  using Nonce = std::array<uint8_t, kNonceBytes>;
  using Tag = std::array<uint8_t, kTagBytes>;

  explicit Aes256Gcm(const Key& key);
  ~Aes256Gcm();
  Aes256Gcm(const Aes256Gcm&) = delete;
  Aes256Gcm& operator=(const Aes256Gcm&) = delete;

  /// Encrypts n bytes of `in` into `out` (may alias `in`); returns the tag.
  Tag seal(const Nonce& nonce, std::span<const uint8_t> aad, const uint8_t* in, size_t n,
           uint8_t* out);
  /// Decrypts and authenticates; returns false (and leaves `out` unspecified) on a bad tag.
  [[nodiscard]] bool open(const Nonce& nonce, std::span<const uint8_t> aad, const uint8_t* in,
                          size_t n, const Tag& tag, uint8_t* out);

 private:
  void* ctx_;  // EVP_CIPHER_CTX
  Key key_;
};

}  // namespace tempo::tee
