// The keys of the offloaded operations (PROTOCOL.md sections 2-4). Plain data; KeyGenerator makes
// them, the encryptors and decryptors read them. Keys never leave the master.
#pragma once

#include <cstdint>
#include <vector>

#include "master/crypto/dim_key.h"

namespace tempo::crypto {

/// Key of C = A·B with A m×k, B k×n: sk = (pi_m, r ; pi_k, s ; pi_n, u).
///   A'[i][j] = r_i   * A[pi_m(i)][pi_k(j)] * s_j        (A' = D_r P_m A P_k D_s)
///   B'[j][l] = 1/s_j * B[pi_k(j)][pi_n(l)] * u_l        (B' = D_s^-1 P_k^T B P_n D_u)
///   C'[i][l] = r_i   * C[pi_m(i)][pi_n(l)] * u_l        (C' = A'·B' = D_r P_m C P_n D_u)
/// `k.scale` carries a random sign (ObfuscationParams::signed_inner_scale).
struct MatmulKey {
  DimKey m;  ///< rows of A and C: (pi_m, r)
  DimKey k;  ///< inner dimension: (pi_k, s)
  DimKey n;  ///< columns of B and C: (pi_n, u)
};

/// Key of a batched product C[b] = op(A[b])·op(B[b]) (attention: Q·K^T, P·V). Both operands are
/// fresh activations, so every batch entry gets its own independent MatmulKey (section 2 applied
/// per entry), and the batch index itself is permuted so the worker cannot tell which blinded
/// entry is which (sample, head):
///   A'[beta] = Enc(entries[beta], A[batch.perm[beta]])   (same for B and C)
/// `batch` has unit scales: the per-entry row and column scales already make every entry's
/// magnitude independent, so a batch scale would add no entropy.
struct BatchedMatmulKey {
  DimKey batch;                    ///< permutation of the batch index (scales are 1)
  std::vector<MatmulKey> entries;  ///< entries[beta]: key of blinded batch entry beta
};

/// Key of a convolution in channel mode (PROTOCOL.md section 3), X N×C×H×W, W O×C×kh×kw:
///   X'[b][c] = r_b * s_c * X[pi_N(b)][pi_C(c)]           (whole H×W planes)
///   W'[o][c] = u_o / s_c * W[pi_O(o)][pi_C(c)]           (whole kh×kw kernels)
///   Y'[b][o] = r_b * u_o * Y[pi_N(b)][pi_O(o)]           (Y' = conv(X', W'))
/// Spatial positions are NOT hidden in this mode (see PROTOCOL.md section 3).
struct ConvChannelKey {
  DimKey batch;         ///< (pi_N, r)
  DimKey in_channels;   ///< (pi_C, s), signed
  DimKey out_channels;  ///< (pi_O, u)
};

/// Key of a convolution in patch mode: a MatmulKey over the im2col product
///   Y_mat[N·H'·W', O] = Patches[N·H'·W', C·kh·kw] · W_mat^T,  W_mat = W viewed as [O, C·kh·kw]:
/// m = output positions (n, y, x) in that order, k = patch columns (c, i, j), n = output channels.
using PatchConvKey = MatmulKey;

}  // namespace tempo::crypto
