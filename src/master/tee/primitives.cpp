#include "master/tee/primitives.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <climits>
#include <stdexcept>

namespace tempo::tee {

namespace {
EVP_CIPHER_CTX* ctx_of(void* p) { return static_cast<EVP_CIPHER_CTX*>(p); }

void check(int ok, const char* what) {
  if (ok != 1) throw std::runtime_error(std::string("OpenSSL: ") + what + " failed");
}

int int_len(size_t n) {
  if (n > static_cast<size_t>(INT_MAX)) throw std::length_error("AES-GCM: message too long");
  return static_cast<int>(n);
}
}  // namespace

Key::~Key() { OPENSSL_cleanse(bytes.data(), bytes.size()); }

Digest sha256(std::span<const uint8_t> data) {
  Digest d;
  unsigned int len = 0;
  check(EVP_Digest(data.data(), data.size(), d.data(), &len, EVP_sha256(), nullptr), "SHA-256");
  return d;
}

Digest hmac_sha256(const Key& key, std::span<const uint8_t> data) {
  Digest d;
  unsigned int len = 0;
  if (!HMAC(EVP_sha256(), key.bytes.data(), static_cast<int>(key.bytes.size()), data.data(),
            data.size(), d.data(), &len))
    throw std::runtime_error("OpenSSL: HMAC-SHA256 failed");
  return d;
}

Key derive_key(const Key& key, std::string_view label, std::span<const uint8_t> context) {
  Bytes info(label.begin(), label.end());
  info.push_back(0);
  info.insert(info.end(), context.begin(), context.end());
  info.push_back(1);
  const Digest d = hmac_sha256(key, info);
  Key out;
  std::copy(d.begin(), d.end(), out.bytes.begin());
  return out;
}

void random_bytes(void* out, size_t n) {
  if (RAND_bytes(static_cast<unsigned char*>(out), int_len(n)) != 1)
    throw std::runtime_error("OpenSSL: RAND_bytes failed (no entropy source?)");
}

bool equal_ct(std::span<const uint8_t> a, std::span<const uint8_t> b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string to_hex(std::span<const uint8_t> data) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  s.reserve(data.size() * 2);
  for (uint8_t b : data) {
    s.push_back(kDigits[b >> 4]);
    s.push_back(kDigits[b & 15]);
  }
  return s;
}

Bytes from_hex(std::string_view hex, std::string_view what) {
  const auto nibble = [&](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    throw std::invalid_argument(std::string(what) + ": not hexadecimal (character '" +
                                std::string(1, c) + "')");
  };
  if (hex.size() % 2 != 0)
    throw std::invalid_argument(std::string(what) + ": odd number of hex digits");
  Bytes out(hex.size() / 2);
  for (size_t i = 0; i < out.size(); ++i)
    out[i] = static_cast<uint8_t>(nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1]));
  return out;
}

Aes256Gcm::Aes256Gcm(const Key& key) : ctx_(EVP_CIPHER_CTX_new()), key_(key) {
  if (!ctx_) throw std::runtime_error("OpenSSL: EVP_CIPHER_CTX_new failed");
}

Aes256Gcm::~Aes256Gcm() { EVP_CIPHER_CTX_free(ctx_of(ctx_)); }

Aes256Gcm::Tag Aes256Gcm::seal(const Nonce& nonce, std::span<const uint8_t> aad, const uint8_t* in,
                               size_t n, uint8_t* out) {
  EVP_CIPHER_CTX* c = ctx_of(ctx_);
  int len = 0;
  check(EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), nullptr, key_.bytes.data(), nonce.data()),
        "AES-GCM init");
  if (!aad.empty())
    check(EVP_EncryptUpdate(c, nullptr, &len, aad.data(), int_len(aad.size())), "AES-GCM AAD");
  if (n > 0) check(EVP_EncryptUpdate(c, out, &len, in, int_len(n)), "AES-GCM encrypt");
  check(EVP_EncryptFinal_ex(c, out + n, &len), "AES-GCM final");
  Tag tag;
  check(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, kTagBytes, tag.data()), "AES-GCM tag");
  return tag;
}

bool Aes256Gcm::open(const Nonce& nonce, std::span<const uint8_t> aad, const uint8_t* in, size_t n,
                     const Tag& tag, uint8_t* out) {
  EVP_CIPHER_CTX* c = ctx_of(ctx_);
  int len = 0;
  check(EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), nullptr, key_.bytes.data(), nonce.data()),
        "AES-GCM init");
  if (!aad.empty())
    check(EVP_DecryptUpdate(c, nullptr, &len, aad.data(), int_len(aad.size())), "AES-GCM AAD");
  if (n > 0) check(EVP_DecryptUpdate(c, out, &len, in, int_len(n)), "AES-GCM decrypt");
  Tag t = tag;
  check(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, kTagBytes, t.data()), "AES-GCM set tag");
  return EVP_DecryptFinal_ex(c, out + n, &len) == 1;
}

}  // namespace tempo::tee
