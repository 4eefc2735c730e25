// Internal: one axis of a permute-and-scale pass, and the pass itself (memory-speed kernels).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "common/blinded_tensor.h"
#include "master/core/tensor.h"
#include "master/crypto/dim_key.h"
#include "master/crypto/keys.h"
#include "master/crypto/row_projection.h"

namespace tempo::crypto {

/// Which power of a DimKey's scale multiplies an entry: x^1, x^-1 or x^0 (no scaling).
enum class ScalePower { kOne, kScale, kInverse };

/// One axis of a gather: output position p reads input position index[p] and is multiplied by
/// mul[p]. Built in O(n) from a DimKey for each call, so the kernels never branch on a key layout.
struct GatherMap {
  std::vector<int32_t> index;
  std::vector<float> mul;
  int64_t size() const { return static_cast<int64_t>(index.size()); }

  /// Encryption axis: blinded position i <- plaintext perm[i], times scale[i]^power.
  static GatherMap encrypt(const DimKey& key, ScalePower power);
  /// Decryption axis: plaintext position a <- blinded inv_perm[a], times the scale of that blinded
  /// position raised to `power` (kInverse undoes a scale the blinded tensor carries, kScale undoes
  /// an inverse scale it carries).
  static GatherMap decrypt(const DimKey& key, ScalePower power);
  /// encrypt()/decrypt() into this map, reusing its storage (for loops over many small keys).
  void set_encrypt(const DimKey& key, ScalePower power);
  void set_decrypt(const DimKey& key, ScalePower power);
};

/// The keys of the row and column axes of one matrix, with the power of their scales (the
/// entries of a batched product: each entry's matrix has its own).
struct MatrixAxes {
  const DimKey* rows;
  ScalePower row_power;
  const DimKey* cols;
  ScalePower col_power;
};

/// Throws std::invalid_argument (naming `what`) unless there is one fresh key per entry of `key`
/// (the per-entry gradient keys of a batched product's backward).
void expect_one_key_per_entry(std::span<const DimKey> keys, const BatchedMatmulKey& key,
                              const std::string& what);

/// dst[i][j][t] = src[rows.index[i]][cols.index[j]][t] * rows.mul[i] * cols.mul[j] for a
/// [rows.size(), cols.size(), plane] tensor stored densely (src has the same extents as dst).
/// One read and one write per element; OpenMP over rows (serial when called inside a parallel
/// region or for small sizes). With `projection` (plane 1 only), also projects every source row
/// (RowProjection) while it is in cache; with `dst_projection`, every destination row once written
/// (row i of dst is projected as row i).
void permute_scale(const float* src, float* dst, int64_t plane, const GatherMap& rows,
                   const GatherMap& cols, const RowProjection* projection = nullptr,
                   const RowProjection* dst_projection = nullptr);

/// Two plane-1 permute_scale calls on one source in a single pass over it: dst1 under (rows1,
/// cols1) and dst2 under (rows2, cols2), all [rows, cols] (equal extents). Bit-identical to the
/// two calls; reads each source row once instead of twice (a Linear layer's output gradient,
/// blinded under both of its backward keys). `dst1_projection`, `dst2_projection` (may be null):
/// as permute_scale's dst_projection, for each destination.
void permute_scale_pair(const float* src, const GatherMap& rows1, const GatherMap& cols1,
                        float* dst1, const GatherMap& rows2, const GatherMap& cols2, float* dst2,
                        const RowProjection* dst1_projection = nullptr,
                        const RowProjection* dst2_projection = nullptr);

/// permute_scale of a plaintext tensor of shape [rows, cols, ...] (trailing dims form the plane)
/// into a new blinded tensor of the same shape. Throws std::invalid_argument (naming `what`)
/// when dims 0 and 1 do not match the maps. `projection` (may be null, plane 1 only): of the
/// blinded rows, as permute_scale's dst_projection.
BlindedTensor blind(const Tensor& t, const GatherMap& rows, const GatherMap& cols, const char* what,
                    const RowProjection* projection = nullptr);
/// blind() of a plaintext matrix under two pairs of maps at once (permute_scale_pair), each
/// result's rows projected by its own `projection` (may be null).
std::pair<BlindedTensor, BlindedTensor> blind_pair(const Tensor& t, const GatherMap& rows1,
                                                   const GatherMap& cols1, const GatherMap& rows2,
                                                   const GatherMap& cols2, const char* what,
                                                   const RowProjection* projection1 = nullptr,
                                                   const RowProjection* projection2 = nullptr);
/// The same from a blinded tensor into a new plaintext one (`projection`: see permute_scale).
Tensor unblind(const BlindedTensor& t, const GatherMap& rows, const GatherMap& cols,
               const char* what, const RowProjection* projection = nullptr);

}  // namespace tempo::crypto
