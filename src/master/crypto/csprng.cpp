#include "master/crypto/csprng.h"

#include <sodium.h>

#include <cstdint>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <utility>

namespace tempo::crypto {

namespace {
void ensure_sodium() {
  static std::once_flag once;
  std::call_once(once, [] {
    // 0: initialised now, 1: already initialised elsewhere; -1: failure (no entropy source).
    if (sodium_init() < 0) throw std::runtime_error("Csprng: sodium_init failed");
  });
}
}  // namespace

Csprng::Csprng() {
  ensure_sodium();
  randombytes_buf(key_.data(), key_.size());
}

Csprng::~Csprng() {
  sodium_memzero(key_.data(), key_.size());
  sodium_memzero(buffer_.data(), sizeof(buffer_));
}

void Csprng::system_bytes(void* out, size_t n) {
  ensure_sodium();
  randombytes_buf(out, n);
}

void Csprng::refill() {
  unsigned char nonce[crypto_stream_chacha20_NONCEBYTES] = {};
  static_assert(sizeof(nonce) == sizeof(nonce_));
  std::memcpy(nonce, &nonce_, sizeof(nonce_));
  ++nonce_;
  crypto_stream_chacha20(reinterpret_cast<unsigned char*>(buffer_.data()), sizeof(buffer_), nonce,
                         key_.data());
  next_ = 0;
}

uint32_t Csprng::next_u32() {
  if (next_ == buffer_.size()) refill();
  const uint32_t v = buffer_[next_];
  buffer_[next_++] = 0;  // consumed key material does not linger
  return v;
}

uint32_t Csprng::uniform(uint32_t upper_bound) {
  if (upper_bound == 0) throw std::invalid_argument("Csprng::uniform: upper bound 0");
  if (upper_bound < 2) return 0;
  // Lemire's multiply-and-reject (ACM TOMS 2019), unbiased like randombytes_uniform: the high
  // word of r·bound is uniform on [0, bound) once the low words below 2^32 mod bound are
  // rejected. Only those rare candidates need the division; each draw otherwise costs one
  // multiplication (key generation draws two values per key entry).
  uint64_t m = static_cast<uint64_t>(next_u32()) * upper_bound;
  auto low = static_cast<uint32_t>(m);
  if (low < upper_bound) {
    const uint32_t threshold = (0U - upper_bound) % upper_bound;
    while (low < threshold) {
      m = static_cast<uint64_t>(next_u32()) * upper_bound;
      low = static_cast<uint32_t>(m);
    }
  }
  return static_cast<uint32_t>(m >> 32);
}

uint64_t Csprng::next_u64() {
  const uint64_t high = next_u32();
  return (high << 32) | next_u32();
}

void Csprng::uniform_run(const uint64_t* bounds, size_t count, uint64_t product, uint64_t* out) {
  using Wide = unsigned __int128;
  for (;;) {
    uint64_t low = next_u64();
    for (size_t i = 0; i < count; ++i) {
      const Wide m = static_cast<Wide>(low) * bounds[i];
      out[i] = static_cast<uint64_t>(m >> 64);
      low = static_cast<uint64_t>(m);
    }
    // low == x·product mod 2^64. Only when low < product can it fall below the threshold, which
    // needs the division.
    if (low >= product || low >= (0 - product) % product) return;
  }
}

void Csprng::uniform_batch(const uint64_t* bounds, size_t count, uint64_t* out) {
  size_t begin = 0;
  while (begin < count) {
    uint64_t product = 1;
    size_t end = begin;
    for (; end < count; ++end) {
      if (bounds[end] == 0) throw std::invalid_argument("Csprng::uniform_batch: bound 0");
      if (product > UINT64_MAX / bounds[end]) break;
      product *= bounds[end];
    }
    uniform_run(bounds + begin, end - begin, product, out + begin);
    begin = end;
  }
}

double Csprng::uniform_unit() {
  const uint64_t v = (static_cast<uint64_t>(next_u32()) << 32) | next_u32();
  return static_cast<double>(v >> 11) * 0x1.0p-53;
}

void Csprng::shuffle(int32_t* values, int64_t n) {
  if (n < 0 || n > 0xffffffffLL) throw std::invalid_argument("Csprng::shuffle: bad length");
  // Durstenfeld: position i swaps with a uniform j in [0, i], so each of the n! permutations has
  // probability exactly 1/n!. The indices of consecutive positions come from one draw as long as
  // the product of their bounds fits in 64 bits (at least two positions, since n < 2^32).
  constexpr size_t kRun = 64;
  uint64_t bounds[kRun], picks[kRun];
  for (int64_t i = n - 1; i > 0;) {
    uint64_t product = 1;
    size_t count = 0;
    for (int64_t p = i; p > 0 && count < kRun; --p, ++count) {
      const auto bound = static_cast<uint64_t>(p + 1);
      if (product > UINT64_MAX / bound) break;
      product *= bound;
      bounds[count] = bound;
    }
    uniform_run(bounds, count, product, picks);
    for (size_t c = 0; c < count; ++c, --i) std::swap(values[i], values[picks[c]]);
  }
}

}  // namespace tempo::crypto
