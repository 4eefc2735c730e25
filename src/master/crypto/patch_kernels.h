// Internal: the fused layout-changing kernels of patch mode (NCHW <-> permuted rows, im2col).
#pragma once

#include <cstdint>

#include "master/crypto/conv_shape.h"
#include "master/crypto/gather_map.h"
#include "master/crypto/row_projection.h"

namespace tempo::crypto::patch {

// In all kernels `rows` is indexed by the plaintext row p = (n, pos) (a GatherMap::decrypt of
// the row key): rows.index[p] is the blinded row that holds p, rows.mul[p] its multiplier.

/// dst[rows.index[p]][l] = src[n][cols.index[l]][pos] * rows.mul[p] * cols.mul[l], where src is
/// [batch, channels, plane] and dst [batch·plane, channels]; `cols` is an encryption map. With
/// `projection`, also projects every row of dst (RowProjection, row i as row i) once written.
void scatter_rows_from_nchw(const float* src, int64_t batch, int64_t channels, int64_t plane,
                            const GatherMap& rows, const GatherMap& cols, float* dst,
                            const RowProjection* projection = nullptr);

/// dst[n][o][pos] = src[rows.index[p]][cols.index[o]] * rows.mul[p] * cols.mul[o], where src is
/// [batch·plane, channels] and dst [batch, channels, plane]; `cols` is a decryption map. With
/// `projection`, also projects every row of src (RowProjection) while it is in cache.
void gather_nchw_from_rows(const float* src, int64_t batch, int64_t channels, int64_t plane,
                           const GatherMap& rows, const GatherMap& cols, float* dst,
                           const RowProjection* projection = nullptr);

/// Fused im2col + permute + scale: dst[rows.index[p]][j] = Patches[p][cols.index[j]] *
/// rows.mul[p] * cols.mul[j], Patches being the transposed im2col of the NCHW input x;
/// `cols` is an encryption map over patch columns q = (c, i, j).
void im2col_blind(const float* x, const ConvShape& s, const GatherMap& rows, const GatherMap& cols,
                  float* dst);

/// Fused unblind + col2im: dx += col2im(dP) with dP[p][q] = src[rows.index[p]][cols.index[q]] *
/// rows.mul[p] * cols.mul[q]; `cols` is a decryption map over patch columns. dx must be zeroed.
/// With `projection`, also projects every row of src (RowProjection) while it is in cache.
void unblind_col2im(const float* src, const ConvShape& s, const GatherMap& rows,
                    const GatherMap& cols, float* dx, const RowProjection* projection = nullptr);

/// The products A'·v_r (r < rounds) and |A'|·v_abs of the blinded patch matrix A' that
/// im2col_blind(x, s, rows, cols) writes, computed from the NCHW input x without forming A':
/// since A'[rows.index[p]][j] = rows.mul[p] · Patches[p][cols.index[j]] · cols.mul[j],
///   (A'·v)[rows.index[p]] = rows.mul[p] · Σ_q Patches[p][q] · f[q],  f[cols.index[j]] =
///   cols.mul[j]·v[j]
/// is a one-filter convolution of x: it reads x (kh·kw times smaller than A') instead of A'.
/// Accumulates in double. `vecs` is [rounds][patch], `vec_abs` [patch]; `out` [rounds][positions]
/// and `out_abs` [positions] are indexed by blinded row, like a projection of A' itself. Equal to
/// projecting A' exactly when the scales are powers of two (no rounding in A'), up to the
/// summation order, as long as no entry of A' under- or overflowed: returns false when some
/// entry of x is neither 0 nor in [low, high) in magnitude (the caller's bound for that).
///
/// `sums` says which rounding the caller's check budgets for (docs/integrity.md, section 2):
/// kDouble, an A side's (its sums in double); kSignLanes, a B side projected on ±1 vectors, whose
/// check allows integrity::projection_relative_bound(K). Then, where every filter entry
/// (cols.mul[j]·v[j], |cols.mul[j]|·v_abs[j]) is 0 or a power of two whose product with any
/// input in [low, high) is an fp32 normal (exact), AVX-512 sums in fp32 lanes, at most ceil(K/16) +
/// 4 terms per lane before the sums go on in double (and in double again if one overflowed).
/// kSignLanesRoundedProducts: the same, where the check also budgets one rounding (2^-24,
/// relative) of every product, so that filter entries need only be fp32 values whose products
/// with in-range inputs are fp32 normals, not powers of two (random-significand keys).
enum class ProjectionSums { kDouble, kSignLanes, kSignLanesRoundedProducts };
bool project_blinded_patches(const float* x, const ConvShape& s, const GatherMap& rows,
                             const GatherMap& cols, const double* vecs, const double* vec_abs,
                             int rounds, double* out, double* out_abs, double low, double high,
                             ProjectionSums sums = ProjectionSums::kDouble);

}  // namespace tempo::crypto::patch
