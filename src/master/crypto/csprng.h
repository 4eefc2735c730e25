// The cryptographically secure random source of every key (libsodium).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace tempo::crypto {

/// A CSPRNG stream for drawing one batch of key material. All key material in Tempo comes from
/// here; the seeded tempo::Rng (src/master/core/random.h) is for training randomness and never
/// for keys.
///
/// Construction draws a fresh 256-bit key from libsodium's randombytes_buf (the OS CSPRNG:
/// getrandom) and the stream is libsodium's ChaCha20 keystream under that key, the construction
/// of libsodium's own randombytes_internal and of randombytes_buf_deterministic. This is the
/// same security as calling randombytes_uniform per draw, without a system call per draw: a
/// patch-mode key has ~10^5 entries and must be fresh every step.
/// The key and buffered stream are wiped (sodium_memzero) on destruction.
///
/// sodium_init() runs exactly once, on first use (thread-safe); failure throws
/// std::runtime_error. One object per thread: a Csprng is not thread-safe.
class Csprng {
 public:
  Csprng();
  ~Csprng();
  Csprng(const Csprng&) = delete;
  Csprng& operator=(const Csprng&) = delete;

  /// 32 uniformly random bits.
  uint32_t next_u32();
  /// 64 uniformly random bits.
  uint64_t next_u64();
  /// Uniform integer in [0, upper_bound), without modulo bias: the rejection method of
  /// randombytes_uniform (reject draws below 2^32 mod upper_bound, then reduce). upper_bound >= 1.
  uint32_t uniform(uint32_t upper_bound);
  /// One uniformly random bit.
  bool bit() { return (next_u32() & 1u) != 0; }
  /// Uniform double in [0, 1) with 53 random bits.
  double uniform_unit();
  /// Independent uniform integers out[i] in [0, bounds[i]) for i < count (every bound >= 1), from
  /// one 64-bit draw per run of consecutive bounds whose product P fits in 64 bits. Per run:
  /// Lemire's multiply-and-reject on P (draw x; reject while x·P mod 2^64 < (2^64 - P) mod P),
  /// which leaves floor(x·P / 2^64) uniform on [0, P); its mixed-radix digits in the bounds are
  /// the outputs, read off by the chain of multiplications x·b_1, (x·b_1 mod 2^64)·b_2, ..., whose
  /// last low word is x·P mod 2^64 (Brackett-Rozinsky and Lemire, "Batched ranged random integer
  /// generation", Software: Practice and Experience, 2024). Small bounds then cost a fraction
  /// of a draw each: 15 for sigma 8's 17 scale exponents, 10 of the first swaps of a 64-shuffle.
  void uniform_batch(const uint64_t* bounds, size_t count, uint64_t* out);
  /// Unbiased Fisher-Yates (Durstenfeld) shuffle: every one of the n! orders of `values` is equally
  /// likely, since the swap indices are independent uniforms (uniform_batch). n must be below
  /// 2^32.
  void shuffle(int32_t* values, int64_t n);

  /// Fills `out` with `n` bytes straight from libsodium's randombytes_buf.
  static void system_bytes(void* out, size_t n);

 private:
  void refill();
  /// One run of uniform_batch: `product` = bounds[0]·...·bounds[count-1] < 2^64.
  void uniform_run(const uint64_t* bounds, size_t count, uint64_t product, uint64_t* out);

  std::array<unsigned char, 32> key_{};
  uint64_t nonce_ = 0;  // one ChaCha20 nonce per refill: distinct blocks of one keyed stream
  std::array<uint32_t, 256> buffer_{};
  size_t next_ = 256;
};

}  // namespace tempo::crypto
