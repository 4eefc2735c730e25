// The key of one tensor dimension: a permutation and a scale vector.
#pragma once

#include <cstdint>
#include <vector>

namespace tempo::crypto {

/// The key material of one dimension of size n: (pi, x) in PROTOCOL.md notation.
///
/// Convention used by every encryptor and decryptor in tempo::crypto (the "gather" convention):
/// **blinded position i holds plaintext index perm[i], multiplied by scale[i]** (or by inv_scale[i]
/// where the algebra asks for D_x^-1). In matrix notation, with P the permutation matrix of perm
/// acting on rows, (P·A)[i][:] = A[perm[i]][:], and acting on columns, (A·P)[:][j] = A[:][perm[j]];
/// PROTOCOL.md's P_m A P_k and P_k^T B then mean exactly "gather rows / columns through perm", and
/// P·P^T = I is what makes the inner permutation cancel. Decryption gathers through inv_perm:
/// plaintext index a sits at blinded position inv_perm[a].
struct DimKey {
  std::vector<int32_t> perm;      ///< perm[i]: plaintext index at blinded position i
  std::vector<int32_t> inv_perm;  ///< inv_perm[perm[i]] == i
  std::vector<float> scale;       ///< scale[i]: multiplier of blinded position i (never 0)
  std::vector<float> inv_scale;   ///< inv_scale[i] == 1 / scale[i] (exact for powers of two)

  int64_t size() const { return static_cast<int64_t>(perm.size()); }

  /// True when perm is a bijection of [0, n), inv_perm is its inverse, and the scales are finite,
  /// non-zero and mutually inverse. Keys from KeyGenerator always are; O(n).
  bool is_valid() const;

  /// The identity key of size n (identity permutation, unit scales): no protection; for tests and
  /// for dimensions a policy deliberately leaves in the clear.
  static DimKey identity(int64_t n);
};

}  // namespace tempo::crypto
