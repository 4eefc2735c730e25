#include "master/crypto/gather_map.h"

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "master/core/simd.h"
#include "master/crypto/row_kernels.h"
#include "master/crypto/short_row_gather.h"

namespace tempo::crypto {

namespace {
/// The scales a key's axis multiplies by: x^1, x^-1, or none (nullptr).
const float* scales_of(const DimKey& key, ScalePower power) {
  switch (power) {
    case ScalePower::kScale:
      return key.scale().data();
    case ScalePower::kInverse:
      return key.inv_scale().data();
    case ScalePower::kOne:
      break;
  }
  return nullptr;
}

// Work below this many elements is not worth waking the thread team.
constexpr int64_t kParallelThreshold = 1 << 15;
}  // namespace

// The power is chosen once per map, not per entry: attention builds hundreds of these maps per
// product, and a switch in the loop kept it scalar.
void GatherMap::set_encrypt(const DimKey& key, ScalePower power) {
  index.assign(key.perm().begin(), key.perm().end());
  const float* scales = scales_of(key, power);
  if (scales == nullptr)
    mul.assign(index.size(), 1.0f);
  else
    mul.assign(scales, scales + index.size());
}

void GatherMap::set_decrypt(const DimKey& key, ScalePower power) {
  index.assign(key.inv_perm().begin(), key.inv_perm().end());
  const float* scales = scales_of(key, power);
  mul.resize(index.size());
  if (scales == nullptr)
    std::fill(mul.begin(), mul.end(), 1.0f);
  else
    for (size_t a = 0; a < mul.size(); ++a) mul[a] = scales[index[a]];
}

GatherMap GatherMap::encrypt(const DimKey& key, ScalePower power) {
  GatherMap g;
  g.set_encrypt(key, power);
  return g;
}

GatherMap GatherMap::decrypt(const DimKey& key, ScalePower power) {
  GatherMap g;
  g.set_decrypt(key, power);
  return g;
}

namespace {
/// Rows up to this many floats (1 KiB) are gathered in place rather than staged in a buffer.
constexpr int64_t kStagedRowFloats = 256;
/// Rows up to this many floats (4 KiB) are software-prefetched (rows_ahead).
constexpr int64_t kPrefetchRowFloats = 1024;
/// Rows of a multiple of 8 floats, up to this many, are gathered 8 at a time through a
/// transpose (gather_rows8; its scratch is 8 rows, 128 KiB at most).
#ifdef __AVX2__
constexpr int64_t kTiledRowFloats = 4096;
#else
constexpr int64_t kTiledRowFloats = 0;
#endif
/// Scratch of gather_rows8 that fits on the stack (short rows, e.g. attention heads).
constexpr int64_t kStackScratchFloats = 8 * 64;

}  // namespace

void expect_one_key_per_entry(std::span<const DimKey> keys, const BatchedMatmulKey& key,
                              const std::string& what) {
  if (keys.size() != key.entries.size())
    throw std::invalid_argument(what + ": " + std::to_string(keys.size()) +
                                " fresh keys for a batch of " + std::to_string(key.entries.size()));
}

void permute_scale(const float* src, float* dst, int64_t plane, const GatherMap& rows,
                   const GatherMap& cols, const RowProjection* projection,
                   const RowProjection* dst_projection) {
  if ((projection != nullptr || dst_projection != nullptr) && plane != 1)
    throw std::logic_error("permute_scale: row projections need plane 1");
  const int64_t nr = rows.size(), nc = cols.size();
  const int32_t* ci = cols.index.data();
  const float* cm = cols.mul.data();
  const bool parallel = nr > 1 && nr * nc * plane >= kParallelThreshold && !omp_in_parallel();
  if (plane == 1) {
    // A row gather. Reading the source row in the random order of the column permutation would
    // take one DRAM/L3 miss per cache line with little memory-level parallelism, so each source
    // row is first streamed (sequentially, prefetcher-friendly) into a thread-local buffer that
    // stays in L1/L2, and the gather reads from there.
    // Source rows are visited in permuted order, which the hardware prefetcher cannot follow: a
    // short row read from DRAM stalls the gather on every cache line (2.2 GB/s for 64-float rows
    // out of cache, against 13.5 GB/s in cache). Requesting the row a few KiB ahead keeps enough
    // misses in flight (3200x768 out of cache: 5.3 -> 6.7 GB/s). Rows of 16 KiB and more are
    // streamed well enough by the hardware prefetcher.
    const int64_t ahead = nc <= kPrefetchRowFloats ? std::max<int64_t>(2, rows_ahead(nc)) : 0;
    const auto gather = [&](int64_t i, float* buf) {
      const int64_t source_row = rows.index[static_cast<size_t>(i)];
      const float* srow = src + source_row * nc;
      if (projection != nullptr) projection->project(srow, nc, source_row);
      // A short row is a few cache lines: gathering from it directly beats copying it first.
      if (nc > kStagedRowFloats) {
        std::memcpy(buf, srow, static_cast<size_t>(nc) * sizeof(float));
        srow = buf;
      }
      gather_row(srow, ci, cm, rows.mul[static_cast<size_t>(i)], nc, dst + i * nc);
      if (dst_projection != nullptr) dst_projection->project(dst + i * nc, nc, i);
    };
    const auto prefetch = [&](int64_t i) {
      prefetch_row(src + static_cast<int64_t>(rows.index[static_cast<size_t>(i)]) * nc, nc);
      prefetch_row(dst + i * nc, nc);
    };
    // Rows of up to 64 floats are permuted inside registers where AVX-512 is available.
    const bool short_rows = nc >= 1 && nc <= kShortRowMaxFloats && simd::avx512();
    const bool tiled = !short_rows && nc % 8 == 0 && nc <= kTiledRowFloats;
    // Rows [begin, end) on this thread, their first `ahead` rows requested up front.
    const auto gather_range = [&](int64_t begin, int64_t end, float* buf) {
      if (short_rows) {
        gather_short_rows_avx512(src, dst, nc, rows.index.data(), rows.mul.data(), begin, end, ci,
                                 cm, projection, dst_projection, ahead);
        return;
      }
      if (ahead > 0)
        for (int64_t i = begin; i < std::min(end, begin + ahead); ++i) prefetch(i);
      int64_t i = begin;
#ifdef __AVX2__
      for (; tiled && i + 8 <= end; i += 8) {
        const float* s[8];
        float* d[8];
        int64_t source_rows[8];
        for (int64_t k = 0; k < 8; ++k) {
          if (ahead > 0 && i + k + ahead < end) prefetch(i + k + ahead);
          source_rows[k] = rows.index[static_cast<size_t>(i + k)];
          s[k] = src + source_rows[k] * nc;
          d[k] = dst + (i + k) * nc;
        }
        if (projection != nullptr) projection->project8(s, nc, source_rows);
        gather_rows8(s, ci, cm, rows.mul.data() + i, nc, d, buf);
        if (dst_projection != nullptr) {
          const int64_t index[8] = {i, i + 1, i + 2, i + 3, i + 4, i + 5, i + 6, i + 7};
          dst_projection->project8(d, nc, index);
        }
      }
#endif
      for (; i < end; ++i) {
        if (ahead > 0 && i + ahead < end) prefetch(i + ahead);
        gather(i, buf);
      }
    };
    // Per thread: the staged row, or gather_rows8's scratch (on the stack when small).
    const size_t scratch = tiled                   ? static_cast<size_t>(8 * nc)
                           : nc > kStagedRowFloats ? static_cast<size_t>(nc)
                                                   : 0;
    const auto with_scratch = [&](auto&& body) {
      if (scratch <= static_cast<size_t>(kStackScratchFloats)) {
        alignas(64) float local[kStackScratchFloats];
        body(local);
      } else {
        std::vector<float> heap(scratch);
        body(heap.data());
      }
    };
    if (!parallel) {
      // No OpenMP region at all: callers that parallelise over many small matrices (attention
      // heads) call this once per matrix, where entering even a one-thread region costs as much
      // as the gather.
      with_scratch([&](float* buf) { gather_range(0, nr, buf); });
      return;
    }
#pragma omp parallel
    {
      const int64_t threads = omp_get_num_threads(), t = omp_get_thread_num();
      // Whole tiles of 8 rows per thread.
      const int64_t chunk = ((nr + threads - 1) / threads + 7) / 8 * 8;
      with_scratch([&](float* buf) {
        gather_range(std::min(nr, t * chunk), std::min(nr, (t + 1) * chunk), buf);
      });
    }
    return;
  }
  // Planes (conv channel mode): contiguous copies with one multiplier per plane.
#pragma omp parallel for schedule(static) collapse(2) if (parallel)
  for (int64_t i = 0; i < nr; ++i)
    for (int64_t j = 0; j < nc; ++j) {
      const float* s =
          src + (static_cast<int64_t>(rows.index[static_cast<size_t>(i)]) * nc + ci[j]) * plane;
      float* d = dst + (i * nc + j) * plane;
      const float m = rows.mul[static_cast<size_t>(i)] * cm[j];
      for (int64_t t = 0; t < plane; ++t) d[t] = s[t] * m;
    }
}

void permute_scale_pair(const float* src, const GatherMap& rows1, const GatherMap& cols1,
                        float* dst1, const GatherMap& rows2, const GatherMap& cols2, float* dst2,
                        const RowProjection* dst1_projection,
                        const RowProjection* dst2_projection) {
  const int64_t nr = rows1.size(), nc = cols1.size();
  if (rows2.size() != nr || cols2.size() != nc)
    throw std::logic_error("permute_scale_pair: the two maps' extents differ");
  // Destination row of each source row in the second output.
  std::vector<int32_t> inv2(static_cast<size_t>(nr));
  for (int64_t i = 0; i < nr; ++i)
    inv2[static_cast<size_t>(rows2.index[static_cast<size_t>(i)])] = static_cast<int32_t>(i);
  const int32_t *ci1 = cols1.index.data(), *ci2 = cols2.index.data();
  const float *cm1 = cols1.mul.data(), *cm2 = cols2.mul.data();
  const bool parallel = nr > 1 && 2 * nr * nc >= kParallelThreshold && !omp_in_parallel();
  const bool short_rows = nc >= 1 && nc <= kShortRowMaxFloats && simd::avx512();
  const bool tiled = !short_rows && nc % 8 == 0 && nc <= kTiledRowFloats;
  const int64_t ahead = nc <= kPrefetchRowFloats ? std::max<int64_t>(2, rows_ahead(nc)) : 0;
  const auto source = [&](int64_t i) {
    return static_cast<int64_t>(rows1.index[static_cast<size_t>(i)]);
  };
  // Output rows [begin, end) of dst1, and wherever their source rows go in dst2.
  const auto gather_range = [&](int64_t begin, int64_t end, float* buf) {
    if (short_rows) {
      const SecondGather second{dst2, inv2.data(), rows2.mul.data(), ci2, cm2, dst2_projection};
      gather_short_rows_avx512(src, dst1, nc, rows1.index.data(), rows1.mul.data(), begin, end, ci1,
                               cm1, nullptr, dst1_projection, ahead, &second);
      return;
    }
    if (ahead > 0)
      for (int64_t i = begin; i < std::min(end, begin + ahead); ++i)
        prefetch_row(src + source(i) * nc, nc);
    int64_t i = begin;
#ifdef __AVX2__
    for (; tiled && i + 8 <= end; i += 8) {
      const float* s[8];
      float* d1[8];
      float* d2[8];
      float rm2[8];
      for (int64_t k = 0; k < 8; ++k) {
        if (ahead > 0 && i + k + ahead < end) prefetch_row(src + source(i + k + ahead) * nc, nc);
        const int64_t r = source(i + k), i2 = inv2[static_cast<size_t>(r)];
        s[k] = src + r * nc;
        d1[k] = dst1 + (i + k) * nc;
        d2[k] = dst2 + i2 * nc;
        rm2[k] = rows2.mul[static_cast<size_t>(i2)];
      }
      transpose_rows8_to_columns(s, nc, buf);  // once for both destinations
      gather_columns8(buf, ci1, cm1, rows1.mul.data() + i, nc, d1);
      gather_columns8(buf, ci2, cm2, rm2, nc, d2);
      if (dst1_projection != nullptr) {
        const int64_t index[8] = {i, i + 1, i + 2, i + 3, i + 4, i + 5, i + 6, i + 7};
        dst1_projection->project8(d1, nc, index);
      }
      if (dst2_projection != nullptr) {
        int64_t index[8];
        for (int64_t k = 0; k < 8; ++k) index[k] = inv2[static_cast<size_t>(source(i + k))];
        dst2_projection->project8(d2, nc, index);
      }
    }
#endif
    for (; i < end; ++i) {
      if (ahead > 0 && i + ahead < end) prefetch_row(src + source(i + ahead) * nc, nc);
      const int64_t r = source(i), i2 = inv2[static_cast<size_t>(r)];
      const float* srow = src + r * nc;
      if (nc > kStagedRowFloats) {
        std::memcpy(buf, srow, static_cast<size_t>(nc) * sizeof(float));
        srow = buf;
      }
      gather_row(srow, ci1, cm1, rows1.mul[static_cast<size_t>(i)], nc, dst1 + i * nc);
      gather_row(srow, ci2, cm2, rows2.mul[static_cast<size_t>(i2)], nc, dst2 + i2 * nc);
      if (dst1_projection != nullptr) dst1_projection->project(dst1 + i * nc, nc, i);
      if (dst2_projection != nullptr) dst2_projection->project(dst2 + i2 * nc, nc, i2);
    }
  };
  const size_t scratch = tiled                   ? static_cast<size_t>(8 * nc)
                         : nc > kStagedRowFloats ? static_cast<size_t>(nc)
                                                 : 1;
  if (!parallel) {
    std::vector<float> buf(scratch);
    gather_range(0, nr, buf.data());
    return;
  }
#pragma omp parallel
  {
    const int64_t threads = omp_get_num_threads(), t = omp_get_thread_num();
    const int64_t chunk = ((nr + threads - 1) / threads + 7) / 8 * 8;  // whole tiles of 8 rows
    std::vector<float> buf(scratch);
    gather_range(std::min(nr, t * chunk), std::min(nr, (t + 1) * chunk), buf.data());
  }
}

namespace {
int64_t plane_of(const Shape& s, const GatherMap& rows, const GatherMap& cols, const char* what) {
  if (s.rank() < 2 || s[0] != rows.size() || s[1] != cols.size())
    throw std::invalid_argument(
        std::string(what) + ": tensor " + s.to_string() + " does not fit a key of dimensions [" +
        std::to_string(rows.size()) + ", " + std::to_string(cols.size()) + ", ...]");
  int64_t plane = 1;
  for (int d = 2; d < s.rank(); ++d) plane *= s[d];
  return plane;
}
}  // namespace

BlindedTensor blind(const Tensor& t, const GatherMap& rows, const GatherMap& cols, const char* what,
                    const RowProjection* projection) {
  const int64_t plane = plane_of(t.shape(), rows, cols, what);
  BlindedTensor out = BlindedTensor::allocate(t.shape());
  permute_scale(t.data(), out.mutable_data(), plane, rows, cols, nullptr, projection);
  return out;
}

std::pair<BlindedTensor, BlindedTensor> blind_pair(const Tensor& t, const GatherMap& rows1,
                                                   const GatherMap& cols1, const GatherMap& rows2,
                                                   const GatherMap& cols2, const char* what,
                                                   const RowProjection* projection1,
                                                   const RowProjection* projection2) {
  if (plane_of(t.shape(), rows1, cols1, what) != 1 || plane_of(t.shape(), rows2, cols2, what) != 1)
    throw std::invalid_argument(std::string(what) + ": tensor " + t.shape().to_string() +
                                " is not a matrix");
  std::pair<BlindedTensor, BlindedTensor> out{BlindedTensor::allocate(t.shape()),
                                              BlindedTensor::allocate(t.shape())};
  permute_scale_pair(t.data(), rows1, cols1, out.first.mutable_data(), rows2, cols2,
                     out.second.mutable_data(), projection1, projection2);
  return out;
}

Tensor unblind(const BlindedTensor& t, const GatherMap& rows, const GatherMap& cols,
               const char* what, const RowProjection* projection) {
  const int64_t plane = plane_of(t.shape(), rows, cols, what);
  Tensor out(t.shape());
  permute_scale(t.data(), out.data(), plane, rows, cols, projection);
  return out;
}

}  // namespace tempo::crypto
