// The key of one tensor dimension: a permutation and a scale vector.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace tempo::crypto {

/// The key material of one dimension of size n: (pi, x) in PROTOCOL.md notation.
///
/// Convention used by every encryptor and decryptor in tempo::crypto (the "gather" convention):
/// **blinded position i holds plaintext index perm()[i], multiplied by scale()[i]** (or by
/// inv_scale()[i] where the algebra asks for D_x^-1). In matrix notation, with P the permutation
/// matrix of perm acting on rows, (P·A)[i][:] = A[perm[i]][:], and acting on columns,
/// (A·P)[:][j] = A[:][perm[j]]; PROTOCOL.md's P_m A P_k and P_k^T B then mean exactly "gather rows
/// / columns through perm", and P·P^T = I is what makes the inner permutation cancel. Decryption
/// gathers through inv_perm: plaintext index a sits at blinded position inv_perm()[a].
///
/// The four arrays live in one allocation, and the keys of a batched product in one allocation
/// for all of them (allocate_many): attention draws hundreds of small keys per product, where
/// four allocations per key cost more than drawing it. A copy is a deep copy with storage of its
/// own; moves share nothing new.
class DimKey {
 public:
  DimKey() = default;
  DimKey(const DimKey& other);
  DimKey& operator=(const DimKey& other);
  DimKey(DimKey&&) noexcept = default;
  DimKey& operator=(DimKey&&) noexcept = default;
  ~DimKey() = default;

  /// A key of size n whose entries are zero, for KeyGenerator to fill. n >= 0.
  explicit DimKey(int64_t n);
  /// Keys of the given sizes carved from one allocation (zero entries, filled by KeyGenerator).
  static std::vector<DimKey> allocate_many(std::span<const int64_t> sizes);

  int64_t size() const { return n_; }
  std::span<const int32_t> perm() const { return {perm_, count()}; }  ///< plaintext index at i
  std::span<const int32_t> inv_perm() const { return {inv_perm_, count()}; }  ///< inverse of perm
  std::span<const float> scale() const { return {scale_, count()}; }  ///< multiplier of i (never 0)
  std::span<const float> inv_scale() const { return {inv_scale_, count()}; }  ///< 1 / scale
  std::span<int32_t> perm() { return {perm_, count()}; }
  std::span<int32_t> inv_perm() { return {inv_perm_, count()}; }
  std::span<float> scale() { return {scale_, count()}; }
  std::span<float> inv_scale() { return {inv_scale_, count()}; }

  /// True when perm is a bijection of [0, n), inv_perm is its inverse, and the scales are finite,
  /// non-zero and mutually inverse. Keys from KeyGenerator always are; O(n).
  bool is_valid() const;

  /// The identity key of size n (identity permutation, unit scales): no protection; for tests and
  /// for dimensions a policy deliberately leaves in the clear.
  static DimKey identity(int64_t n);

 private:
  /// Points the four arrays at `words` (4·n 32-bit words) inside `storage`.
  DimKey(std::shared_ptr<std::byte[]> storage, std::byte* words, int64_t n);
  size_t count() const { return static_cast<size_t>(n_); }

  std::shared_ptr<std::byte[]> storage_;  // shared only by the keys of one allocate_many
  int32_t* perm_ = nullptr;
  int32_t* inv_perm_ = nullptr;
  float* scale_ = nullptr;
  float* inv_scale_ = nullptr;
  int64_t n_ = 0;
};

}  // namespace tempo::crypto
