#include "master/crypto/patch_kernels.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "master/core/avx512_lanes.h"
#include "master/core/simd.h"
#include "master/crypto/row_kernels.h"

namespace tempo::crypto::patch {

namespace {
// Positions handled together so that each cache line of a channel plane is used 16 times
// while it is in L1 (the NCHW side is read or written with a stride of one plane).
constexpr int64_t kTile = 16;
}  // namespace

#ifdef __AVX2__
namespace {

/// 8 positions [pos, pos + 8) of one image, all channels (a multiple of 8): for each block of 8
/// output columns, the 8 source channel lines are loaded (32 bytes each, scaled by their column
/// and row multipliers), transposed, and stored as 8 row segments: no scalar transpose, no gather.
inline void scatter_rows8(const float* img, int64_t channels, int64_t plane, int64_t pos,
                          const int32_t* ci, const float* cm, const float* row_mul,
                          float* const d8[8]) {
  const __m256 rm = _mm256_loadu_ps(row_mul);
  for (int64_t j = 0; j < channels; j += 8) {
    __m256 r[8];
    for (int q = 0; q < 8; ++q)
      r[q] = _mm256_mul_ps(_mm256_loadu_ps(img + static_cast<int64_t>(ci[j + q]) * plane + pos),
                           _mm256_mul_ps(rm, _mm256_set1_ps(cm[j + q])));
    transpose8x8(r);
    for (int k = 0; k < 8; ++k) _mm256_storeu_ps(d8[k] + j, r[k]);
  }
}

}  // namespace
#endif

void scatter_rows_from_nchw(const float* src, int64_t batch, int64_t channels, int64_t plane,
                            const GatherMap& rows, const GatherMap& cols, float* dst,
                            const RowProjection* projection) {
  const int64_t tiles = (plane + kTile - 1) / kTile;
  const int32_t* ci = cols.index.data();
  const float* cm = cols.mul.data();
  // Rows are written at permuted positions: own the lines of the next tile's rows early.
  const int64_t positions = batch * plane;
#ifdef __AVX2__
  const bool blocks8 = channels % 8 == 0;
#endif
#pragma omp parallel if (batch * plane * channels > 32768)
  {
    // For positions outside whole groups of 8 (or channels not a multiple of 8): the tile
    // transposed to [kTile][channels] first: reading the channel planes directly, one line per
    // channel 4 KiB apart, maps every line to the same L1 set and thrashes it. Each row is then
    // a gather within one contiguous, L1-resident row. (With the 8-position blocks, only planes
    // that are not a multiple of 8 leave such positions.)
#ifdef __AVX2__
    const bool leftovers = !blocks8 || plane % 8 != 0;
#else
    const bool leftovers = true;
#endif
    std::vector<float> tile(leftovers ? static_cast<size_t>(kTile * channels) : 0);
#pragma omp for schedule(static) collapse(2)
    for (int64_t n = 0; n < batch; ++n)
      for (int64_t t = 0; t < tiles; ++t) {
        const float* img = src + n * channels * plane;
        const int64_t begin = t * kTile, count = std::min(plane, begin + kTile) - begin;
        const auto own_rows_ahead = [&](size_t p) {
          if (static_cast<int64_t>(p) + kTile < positions)
            prefetch_row(dst + static_cast<int64_t>(rows.index[p + kTile]) * channels, channels);
        };
        int64_t k = 0;
#ifdef __AVX2__
        // One line per channel plane, planes apart: more streams than the hardware prefetcher
        // follows, so the lines of the tile after next are requested now.
        if (blocks8 && count >= 8 && begin + 3 * kTile <= plane)
          for (int64_t c = 0; c < channels; ++c)
            prefetch_row(img + c * plane + begin + 2 * kTile, kTile);
        // Each group of 8 rows is projected once the next group is written (or the tile ends):
        // read back at once, rows still in the store buffer would stall the projection's loads.
        const float* written[8];
        int64_t written_index[8];
        bool pending = false;
        const auto project_written = [&] {
          if (pending) projection->project8(written, channels, written_index);
          pending = false;
        };
        for (; blocks8 && k + 8 <= count; k += 8) {
          float* d8[8];
          const auto p0 = static_cast<size_t>(n * plane + begin + k);
          for (int r = 0; r < 8; ++r) {
            own_rows_ahead(p0 + static_cast<size_t>(r));
            d8[r] = dst + static_cast<int64_t>(rows.index[p0 + static_cast<size_t>(r)]) * channels;
          }
          scatter_rows8(img, channels, plane, begin + k, ci, cm, rows.mul.data() + p0, d8);
          if (projection == nullptr) continue;
          project_written();
          for (int r = 0; r < 8; ++r) {
            written[r] = d8[r];
            written_index[r] = rows.index[p0 + static_cast<size_t>(r)];
          }
          pending = true;
        }
        if (projection != nullptr) project_written();
#endif
        if (k == count) continue;
        const int64_t rest = count - k;
        for (int64_t c = 0; c < channels; ++c) {
          const float* line = img + c * plane + begin + k;
          for (int64_t i = 0; i < rest; ++i) tile[static_cast<size_t>(i * channels + c)] = line[i];
        }
        for (int64_t i = 0; i < rest; ++i) {
          const auto p = static_cast<size_t>(n * plane + begin + k + i);
          own_rows_ahead(p);
          float* d = dst + static_cast<int64_t>(rows.index[p]) * channels;
          gather_row(tile.data() + i * channels, ci, cm, rows.mul[p], channels, d);
          if (projection != nullptr) projection->project(d, channels, rows.index[p]);
        }
      }
  }
}

void gather_nchw_from_rows(const float* src, int64_t batch, int64_t channels, int64_t plane,
                           const GatherMap& rows, const GatherMap& cols, float* dst,
                           const RowProjection* projection) {
  const int64_t tiles = (plane + kTile - 1) / kTile;
  const int32_t* ci = cols.index.data();
  const float* cm = cols.mul.data();
  // Rows are read at permuted positions: request the next tile's rows while this one is used.
  const int64_t positions = batch * plane;
#pragma omp parallel for schedule(static) collapse(2) if (batch * plane * channels > 32768)
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t t = 0; t < tiles; ++t) {
      const int64_t begin = t * kTile, count = std::min(plane, begin + kTile) - begin;
      const float* srow[kTile];
      float rm[kTile];
      for (int64_t k = 0; k < count; ++k) {
        const auto p = static_cast<size_t>(n * plane + begin + k);
        if (static_cast<int64_t>(p) + kTile < positions)
          prefetch_row(src + static_cast<int64_t>(rows.index[p + kTile]) * channels, channels);
        srow[k] = src + static_cast<int64_t>(rows.index[p]) * channels;
        rm[k] = rows.mul[p];
        if (projection) projection->project(srow[k], channels, rows.index[p]);
      }
      float* img = dst + n * channels * plane + begin;
      for (int64_t o = 0; o < channels; ++o) {
        const int32_t col = ci[o];
        float* d = img + o * plane;
        for (int64_t k = 0; k < count; ++k) d[k] = srow[k][col] * (rm[k] * cm[o]);
      }
    }
}

#ifdef __AVX2__
namespace {

/// im2col_blind for convolutions with C·kh·kw a multiple of 8. Each image is first copied with its
/// zero padding, so that every window is inside it, each padded row as sw phases (horizontal
/// stride sw: column x at phase x mod sw, index x / sw); then, for 8 neighbouring positions of an
/// output row, tap j of all 8 windows is 8 consecutive floats of one phase: one load gives column
/// j of an 8-row tile, and an 8x8 transpose turns 8 such columns into 8 row segments (no gather).
/// The last tile of a row may have fewer than 8 positions (rows of 7 or 4 in ResNet's last
/// stages): its other lanes read zeros past the row and are written to a spare row. Padding zeros
/// come out as 0 · (row scale · column scale), i.e. -0.0 under a negative column scale, where the
/// general path writes +0.0.
void im2col_blind_tiled(const float* x, const ConvShape& s, const GatherMap& rows,
                        const GatherMap& cols, float* dst) {
  const int64_t oh = s.out_h(), ow = s.out_w(), kdim = s.patch();
  const int64_t h = s.height, w = s.width, c_all = s.in_channels;
  const int64_t sh = s.geometry.stride_h, sw = s.geometry.stride_w;
  const int64_t ph = s.geometry.pad_h, pw = s.geometry.pad_w;
  const int64_t hp = h + 2 * ph, wp = w + 2 * pw;
  // A padded row: sw phases of wq floats; padded column x at x % sw * wq + x / sw (column_at).
  // Wide enough for the 8 lanes of a row's last tile, some of them past its last position.
  const int64_t tiles = (ow + 7) / 8;
  const int64_t wq = std::max((wp + sw - 1) / sw, tiles * 8 + (s.kw - 1) / sw);
  const int64_t rs = sw * wq, padded_image = c_all * hp * rs;
  std::vector<int64_t> column_at(static_cast<size_t>(wp));
  for (int64_t x = 0; x < wp; ++x) column_at[static_cast<size_t>(x)] = x % sw * wq + x / sw;
  std::vector<int64_t> off(static_cast<size_t>(kdim));
  for (int64_t j = 0; j < kdim; ++j) {
    const int64_t q = cols.index[static_cast<size_t>(j)];
    const int64_t c = q / (s.kh * s.kw), i = (q / s.kw) % s.kh, k = q % s.kw;
    off[static_cast<size_t>(j)] = (c * hp + i) * rs + column_at[static_cast<size_t>(k)];
  }
  const int64_t* of = off.data();
  const float* cm = cols.mul.data();
  const int64_t ahead = rows_ahead(kdim), positions = s.positions();
#pragma omp parallel if (s.positions() * kdim > 32768)
  {
    std::vector<float> padded(static_cast<size_t>(padded_image), 0.0f);
    std::vector<float> spare(static_cast<size_t>(kdim));  // the rows of a tile's unused lanes
#pragma omp for schedule(static)
    for (int64_t n = 0; n < s.batch; ++n) {
      const float* img = x + n * c_all * h * w;
      for (int64_t c = 0; c < c_all; ++c)
        for (int64_t y = 0; y < h; ++y) {
          const float* from = img + (c * h + y) * w;
          float* to = padded.data() + (c * hp + y + ph) * rs;
          if (sw == 1) {
            std::copy_n(from, w, to + pw);
          } else {
            for (int64_t x = 0; x < w; ++x) to[column_at[static_cast<size_t>(x + pw)]] = from[x];
          }
        }
      for (int64_t y = 0; y < oh; ++y) {
        const float* line = padded.data() + y * sh * rs;  // window corner of (y, 0)
        const int64_t row0 = (n * oh + y) * ow;
        for (int64_t xo = 0; xo < ow; xo += 8) {
          const int64_t lanes = std::min<int64_t>(8, ow - xo);
          float* d[8];
          alignas(32) float mul[8] = {};
          for (int64_t k = 0; k < 8; ++k) {
            if (k >= lanes) {
              d[k] = spare.data();
              continue;
            }
            const auto p = static_cast<size_t>(row0 + xo + k);
            if (static_cast<int64_t>(p) + ahead < positions)
              prefetch_row(
                  dst + static_cast<int64_t>(rows.index[p + static_cast<size_t>(ahead)]) * kdim,
                  kdim);
            d[k] = dst + static_cast<int64_t>(rows.index[p]) * kdim;
            mul[k] = rows.mul[p];
          }
          const __m256 row_mul = _mm256_load_ps(mul);
          const float* base = line + xo;
          for (int64_t j = 0; j < kdim; j += 8) {
            __m256 r[8];
            for (int k = 0; k < 8; ++k)
              r[k] = _mm256_mul_ps(_mm256_loadu_ps(base + of[j + k]),
                                   _mm256_mul_ps(row_mul, _mm256_set1_ps(cm[j + k])));
            transpose8x8(r);
            for (int k = 0; k < 8; ++k) _mm256_storeu_ps(d[k] + j, r[k]);
          }
        }
      }
    }
  }
}

}  // namespace
#endif

void im2col_blind(const float* x, const ConvShape& s, const GatherMap& rows, const GatherMap& cols,
                  float* dst) {
#ifdef __AVX2__
  if (s.patch() % 8 == 0) {
    im2col_blind_tiled(x, s, rows, cols, dst);
    return;
  }
#endif
  const int64_t oh = s.out_h(), ow = s.out_w(), kdim = s.patch();
  const int64_t h = s.height, w = s.width, image = s.in_channels * h * w;
  const int64_t sh = s.geometry.stride_h, sw = s.geometry.stride_w;
  const int64_t ph = s.geometry.pad_h, pw = s.geometry.pad_w;
  // Per blinded column j: the offset of its tap relative to the window's top-left corner.
  std::vector<int64_t> off(static_cast<size_t>(kdim));
  std::vector<int32_t> tap_y(static_cast<size_t>(kdim)), tap_x(static_cast<size_t>(kdim));
  for (int64_t j = 0; j < kdim; ++j) {
    const int64_t q = cols.index[static_cast<size_t>(j)];
    const int64_t c = q / (s.kh * s.kw), i = (q / s.kw) % s.kh, k = q % s.kw;
    off[static_cast<size_t>(j)] = (c * h + i) * w + k;
    tap_y[static_cast<size_t>(j)] = static_cast<int32_t>(i);
    tap_x[static_cast<size_t>(j)] = static_cast<int32_t>(k);
  }
  const int64_t* of = off.data();
  const float* cm = cols.mul.data();
  // Patch rows are written at permuted positions: own the lines of the rows a few positions
  // ahead before the stores reach them (the store misses otherwise stall the pass).
  const int64_t ahead = rows_ahead(kdim), positions = s.positions();
#pragma omp parallel for schedule(static) collapse(2) if (s.positions() * kdim > 32768)
  for (int64_t n = 0; n < s.batch; ++n)
    for (int64_t y = 0; y < oh; ++y) {
      const float* img = x + n * image;
      const int64_t iy0 = y * sh - ph;
      const bool rows_inside = iy0 >= 0 && iy0 + s.kh <= h;
      for (int64_t xo = 0; xo < ow; ++xo) {
        const auto p = static_cast<size_t>((n * oh + y) * ow + xo);
        if (static_cast<int64_t>(p) + ahead < positions)
          prefetch_row(
              dst + static_cast<int64_t>(rows.index[p + static_cast<size_t>(ahead)]) * kdim, kdim);
        float* d = dst + static_cast<int64_t>(rows.index[p]) * kdim;
        const float rm = rows.mul[p];
        const int64_t ix0 = xo * sw - pw;
        const int64_t corner = iy0 * w + ix0;
        if (rows_inside && ix0 >= 0 && ix0 + s.kw <= w) {
          const float* base = img + corner;  // the whole window is inside the image
          for (int64_t j = 0; j < kdim; ++j) d[j] = base[of[j]] * (rm * cm[j]);
        } else {
          for (int64_t j = 0; j < kdim; ++j) {
            const int64_t iy = iy0 + tap_y[static_cast<size_t>(j)];
            const int64_t ix = ix0 + tap_x[static_cast<size_t>(j)];
            d[j] = (iy >= 0 && iy < h && ix >= 0 && ix < w) ? img[corner + of[j]] * (rm * cm[j])
                                                            : 0.0f;
          }
        }
      }
    }
}

#ifdef __AVX2__
namespace {

/// unblind_col2im for C·kh·kw a multiple of 8 and one task per image. 8 neighbouring positions of
/// an output row are unblinded together: their 8 patch rows are transposed into [kdim][8] so that
/// each blinded column is one vector over the 8 positions, and tap (c, i, k) of the 8 windows adds
/// that vector, scaled, to 8 consecutive floats of a zero-padded accumulator of the image. With
/// horizontal stride sw those 8 windows' taps are sw columns apart in the image, so the accumulator
/// keeps each padded row as sw phases (column x at phase x mod sw, index x / sw), in which they are
/// consecutive again. Taps k run from kw-1 down to 0 so that every output element receives its
/// terms in the order of the per-position path (positions in increasing order): the sums are
/// bit-identical. The last tile of a row may have fewer than 8 positions: its other lanes add zeros
/// past the row's end.
void unblind_col2im_tiled(const float* src, const ConvShape& s, const GatherMap& rows,
                          const GatherMap& cols, float* dx, const RowProjection* projection) {
  const int64_t oh = s.out_h(), ow = s.out_w(), kdim = s.patch();
  const int64_t h = s.height, w = s.width, c_all = s.in_channels;
  const int64_t sh = s.geometry.stride_h, sw = s.geometry.stride_w;
  const int64_t ph = s.geometry.pad_h, pw = s.geometry.pad_w;
  const int64_t hp = h + 2 * ph, wp = w + 2 * pw;
  // A padded row: sw phases of wq floats; padded column x at x % sw * wq + x / sw (column_at),
  // tap k of the window at output column 0 at tap_at[k].
  // Wide enough for the 8 lanes of a row's last tile, some of them past its last position.
  const int64_t tiles = (ow + 7) / 8;
  const int64_t wq = std::max((wp + sw - 1) / sw, tiles * 8 + (s.kw - 1) / sw), rs = sw * wq;
  std::vector<int64_t> column_at(static_cast<size_t>(wp));
  for (int64_t x = 0; x < wp; ++x) column_at[static_cast<size_t>(x)] = x % sw * wq + x / sw;
  const std::vector<int64_t> tap_at(column_at.begin(), column_at.begin() + s.kw);
  const int32_t* ci = cols.index.data();
  const float* cm = cols.mul.data();
  const int64_t ahead = rows_ahead(kdim), positions = s.positions();
#pragma omp parallel if (s.positions() * kdim > 32768)
  {
    std::vector<float> acc(static_cast<size_t>(c_all * hp * rs));
    std::vector<float> columns(static_cast<size_t>(8 * kdim));
    const std::vector<float> zeros(static_cast<size_t>(kdim), 0.0f);  // a tile's unused lanes
#pragma omp for schedule(static)
    for (int64_t n = 0; n < s.batch; ++n) {
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int64_t y = 0; y < oh; ++y) {
        const int64_t row0 = (n * oh + y) * ow;
        float* line = acc.data() + y * sh * rs;  // the accumulator at window corner (y, 0)
        const auto request = [&](size_t p) {
          if (static_cast<int64_t>(p) + ahead < positions)
            prefetch_row(
                src + static_cast<int64_t>(rows.index[p + static_cast<size_t>(ahead)]) * kdim,
                kdim);
        };
        for (int64_t xo = 0; xo < ow; xo += 8) {
          const int64_t lanes = std::min<int64_t>(8, ow - xo);
          const float* srow[8];
          int64_t index[8];
          alignas(32) float mul[8] = {};
          for (int64_t k = 0; k < 8; ++k) {
            if (k >= lanes) {
              srow[k] = zeros.data();  // adds zeros past the row's end
              continue;
            }
            const auto p = static_cast<size_t>(row0 + xo + k);
            request(p);
            srow[k] = src + static_cast<int64_t>(rows.index[p]) * kdim;
            mul[k] = rows.mul[p];
            index[k] = rows.index[p];
          }
          if (projection) {
            if (lanes == 8)
              projection->project8(srow, kdim, index);
            else
              for (int64_t k = 0; k < lanes; ++k) projection->project(srow[k], kdim, index[k]);
          }
          transpose_rows8_to_columns(srow, kdim, columns.data());
          const __m256 row_mul = _mm256_load_ps(mul);
          // Tap k outermost: the vectors of taps k and k-sw of one (c, i) overlap in 7 of 8
          // floats, and a load that overlaps a store still in flight waits for it to reach the
          // cache (a failed store-to-load forward); every (c, i) in between hides that.
          for (int64_t k = s.kw - 1; k >= 0; --k) {
            float* tap_line = line + tap_at[static_cast<size_t>(k)] + xo;
            for (int64_t c = 0; c < c_all; ++c)
              for (int64_t i = 0; i < s.kh; ++i) {
                float* out = tap_line + (c * hp + i) * rs;
                const int64_t q = (c * s.kh + i) * s.kw + k;
                const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(columns.data() + int64_t{ci[q]} * 8),
                                               _mm256_mul_ps(row_mul, _mm256_set1_ps(cm[q])));
                _mm256_storeu_ps(out, _mm256_add_ps(_mm256_loadu_ps(out), v));
              }
          }
        }
      }
      float* img = dx + n * c_all * h * w;
      for (int64_t c = 0; c < c_all; ++c)
        for (int64_t y = 0; y < h; ++y) {
          const float* a = acc.data() + (c * hp + y + ph) * rs;
          float* d = img + (c * h + y) * w;
          if (sw == 1) {
            for (int64_t x = 0; x < w; ++x) d[x] += a[x + pw];
          } else {
            for (int64_t x = 0; x < w; ++x) d[x] += a[column_at[static_cast<size_t>(x + pw)]];
          }
        }
    }
  }
}

}  // namespace
#endif

void unblind_col2im(const float* src, const ConvShape& s, const GatherMap& rows,
                    const GatherMap& cols, float* dx, const RowProjection* projection) {
#ifdef __AVX2__
  const int team = omp_in_parallel() ? 1 : omp_get_max_threads();
  if (s.patch() % 8 == 0 && s.batch >= team) {
    unblind_col2im_tiled(src, s, rows, cols, dx, projection);
    return;
  }
#endif
  const int64_t oh = s.out_h(), ow = s.out_w(), kdim = s.patch();
  const int64_t h = s.height, w = s.width, c_all = s.in_channels;
  const int64_t sh = s.geometry.stride_h, sw = s.geometry.stride_w;
  const int64_t ph = s.geometry.pad_h, pw = s.geometry.pad_w;
  // Each task owns whole channel planes of one image, so accumulation needs no atomics; split the
  // channels when there are fewer images than threads.
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  const int64_t blocks =
      s.batch >= threads ? 1 : std::min<int64_t>(c_all, (threads + s.batch - 1) / s.batch);
  const int32_t* ci = cols.index.data();
  const float* cm = cols.mul.data();
  const int64_t taps = s.kh * s.kw;
  // Patch rows are read at permuted positions: request the rows a few positions ahead.
  const int64_t ahead = rows_ahead(kdim), positions = s.positions();
#pragma omp parallel for schedule(static) collapse(2) if (s.positions() * kdim > 32768)
  for (int64_t n = 0; n < s.batch; ++n)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t c0 = c_all * b / blocks, c1 = c_all * (b + 1) / blocks;
      const int64_t q_begin = c0 * taps, q_end = c1 * taps;
      // One patch row unblinded into natural (c, i, k) order first: the gather runs as one
      // vectorisable loop, and the fold below adds contiguous runs of kw.
      std::vector<float> row(static_cast<size_t>(q_end - q_begin));
      float* t = row.data() - q_begin;
      float* img = dx + n * c_all * h * w;
      for (int64_t y = 0; y < oh; ++y)
        for (int64_t xo = 0; xo < ow; ++xo) {
          const auto p = static_cast<size_t>((n * oh + y) * ow + xo);
          if (static_cast<int64_t>(p) + ahead < positions)
            prefetch_row(
                src + static_cast<int64_t>(rows.index[p + static_cast<size_t>(ahead)]) * kdim,
                kdim);
          const float* srow = src + static_cast<int64_t>(rows.index[p]) * kdim;
          const float rm = rows.mul[p];
          for (int64_t q = q_begin; q < q_end; ++q) t[q] = srow[ci[q]] * (rm * cm[q]);
          if (projection && b == 0) projection->project(srow, kdim, rows.index[p]);
          const int64_t iy0 = y * sh - ph, ix0 = xo * sw - pw;
          if (iy0 >= 0 && iy0 + s.kh <= h && ix0 >= 0 && ix0 + s.kw <= w) {
            for (int64_t c = c0; c < c1; ++c)
              for (int64_t i = 0; i < s.kh; ++i) {
                float* out = img + (c * h + iy0 + i) * w + ix0;
                const float* tap = t + (c * s.kh + i) * s.kw;
                for (int64_t k = 0; k < s.kw; ++k) out[k] += tap[k];
              }
            continue;
          }
          for (int64_t c = c0; c < c1; ++c)
            for (int64_t i = 0; i < s.kh; ++i) {
              const int64_t iy = iy0 + i;
              if (iy < 0 || iy >= h) continue;
              float* out = img + (c * h + iy) * w;
              const float* tap = t + (c * s.kh + i) * s.kw;
              for (int64_t k = 0; k < s.kw; ++k) {
                const int64_t ix = ix0 + k;
                if (ix >= 0 && ix < w) out[ix] += tap[k];
              }
            }
        }
    }
}

namespace {

#include "master/crypto/patch_projection.inc"

}  // namespace

TEMPO_BEGIN_AVX512
namespace {
namespace avx512_bodies {
#include "master/crypto/patch_projection.inc"
}  // namespace avx512_bodies
}  // namespace
TEMPO_END_AVX512

namespace {

template <int R, bool Abs, int64_t Stride>
TEMPO_TARGET_AVX512 void project_image_avx512(const double* pad, const ConvShape& s, int64_t wp,
                                              const int64_t* offset, const double* filter,
                                              double* acc) {
  avx512_bodies::project_image<simd::Avx512, R, Abs, Stride>(pad, s, wp, offset, filter, acc);
}

template <int R, bool Abs, int64_t Stride>
void project_image_any(const double* pad, const ConvShape& s, int64_t wp, const int64_t* offset,
                       const double* filter, double* acc) {
  if (simd::avx512())
    project_image_avx512<R, Abs, Stride>(pad, s, wp, offset, filter, acc);
  else
    project_image<simd::Avx2, R, Abs, Stride>(pad, s, wp, offset, filter, acc);
}

/// The offsets of `channels` channels' taps from a window's corner in a padded [hp][wp] plane
/// stack, in natural patch order (c, i, j): the kernels' flat loop over taps.
std::vector<int64_t> tap_offsets(const ConvShape& s, int64_t channels, int64_t hp, int64_t wp) {
  std::vector<int64_t> offset;
  offset.reserve(static_cast<size_t>(channels * s.kh * s.kw));
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t i = 0; i < s.kh; ++i)
      for (int64_t j = 0; j < s.kw; ++j) offset.push_back((c * hp + i) * wp + j);
  return offset;
}

/// The fp32 version of project_image for sign filters (every filter entry 0 or ± a power of two,
/// so each product with an input in range is an exact fp32 value): tiles of 4 output rows × 16
/// columns, one AVX-512 register per row and filter. Each lane adds the taps of at most
/// `chunk_channels` channels in fp32 (the caller keeps that within ceil(K/16) + 4 terms, inside
/// the checks' projection_relative_bound(K)), then the chunk's sums are added in double. `pad` is
/// the image in fp32, zero-padded so that every window of every tile lies inside it; `filter` is
/// [K][F] in natural patch order; acc [F][plane_out]. Stride 1 or 2 along the width.
constexpr int64_t kSignTileRows = 4;
constexpr int64_t kSignTileCols = 16;

template <int R, bool Abs, int64_t Stride>
TEMPO_TARGET_AVX512 void project_image_signs_avx512(const float* pad, const ConvShape& s,
                                                    int64_t hp, int64_t wp, const int64_t* offset,
                                                    const float* filter, int64_t chunk_channels,
                                                    double* acc) {
  static_assert(Stride == 1 || Stride == 2);
  constexpr int F = R + (Abs ? 1 : 0);
  constexpr int64_t TR = kSignTileRows, TC = kSignTileCols;
  const int64_t oh = s.out_h(), ow = s.out_w(), plane_out = oh * ow;
  const int64_t sh = s.geometry.stride_h, channels = s.in_channels, taps = s.kh * s.kw;
  const int64_t row_step = sh * wp;  // from one output row's window to the next one's
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  for (int64_t oy = 0; oy < oh; oy += TR)
    for (int64_t ox0 = 0; ox0 < ow; ox0 += TC) {
      __m512d total[TR][F][2];
      for (auto& row : total)
        for (auto& sums : row) sums[0] = sums[1] = _mm512_setzero_pd();
      for (int64_t c0 = 0; c0 < channels; c0 += chunk_channels) {
        const int64_t chunk_taps = (std::min(channels, c0 + chunk_channels) - c0) * taps;
        const float* corner = pad + (c0 * hp + oy * sh) * wp + ox0 * Stride;
        const float* f = filter + c0 * taps * F;
        __m512 sum[TR][F];
        for (auto& row : sum)
          for (__m512& x : row) x = _mm512_setzero_ps();
        for (int64_t t = 0; t < chunk_taps; ++t, f += F) {
          const float* p = corner + offset[t];
          __m512 v[TR];
          for (int64_t dy = 0; dy < TR; ++dy) {
            if constexpr (Stride == 1)
              v[dy] = _mm512_loadu_ps(p + dy * row_step);
            else
              v[dy] = _mm512_permutex2var_ps(_mm512_loadu_ps(p + dy * row_step), even,
                                             _mm512_loadu_ps(p + dy * row_step + 16));
          }
          for (int r = 0; r < R; ++r) {
            const __m512 fr = _mm512_set1_ps(f[r]);
            for (int64_t dy = 0; dy < TR; ++dy) sum[dy][r] = _mm512_fmadd_ps(v[dy], fr, sum[dy][r]);
          }
          if constexpr (Abs) {
            const __m512 fa = _mm512_set1_ps(f[R]);
            for (int64_t dy = 0; dy < TR; ++dy)
              sum[dy][R] = _mm512_fmadd_ps(simd::magnitude(v[dy]), fa, sum[dy][R]);
          }
        }
        // Widened exactly, added in double. (Zero-masking forms: see row_projection.cpp.)
        for (int64_t dy = 0; dy < TR; ++dy)
          for (int r = 0; r < F; ++r) {
            const __m256 low = _mm512_maskz_extractf32x8_ps(0xFF, sum[dy][r], 0);
            const __m256 high = _mm512_maskz_extractf32x8_ps(0xFF, sum[dy][r], 1);
            total[dy][r][0] = _mm512_add_pd(total[dy][r][0], _mm512_maskz_cvtps_pd(0xFF, low));
            total[dy][r][1] = _mm512_add_pd(total[dy][r][1], _mm512_maskz_cvtps_pd(0xFF, high));
          }
      }
      const int64_t n = std::min(TC, ow - ox0);
      for (int64_t dy = 0; dy < TR && oy + dy < oh; ++dy)
        for (int r = 0; r < F; ++r) {
          double t[TC];
          _mm512_storeu_pd(t, total[dy][r][0]);
          _mm512_storeu_pd(t + 8, total[dy][r][1]);
          std::copy(t, t + n, acc + r * plane_out + (oy + dy) * ow + ox0);
        }
    }
}

template <int R, bool Abs>
void project_image_signs(const float* pad, const ConvShape& s, int64_t hp, int64_t wp,
                         const int64_t* offset, const float* filter, int64_t chunk_channels,
                         double* acc) {
  if (s.geometry.stride_w == 1)
    project_image_signs_avx512<R, Abs, 1>(pad, s, hp, wp, offset, filter, chunk_channels, acc);
  else
    project_image_signs_avx512<R, Abs, 2>(pad, s, hp, wp, offset, filter, chunk_channels, acc);
}

/// x as an fp32 value, if it is one and, with `power_of_two`, 0 or ± a power of two (products
/// with it are then exact).
bool fp32_filter_value(double x, bool power_of_two, float* out) {
  const auto f = static_cast<float>(x);
  if (static_cast<double>(f) != x || !std::isfinite(f)) return false;
  int e = 0;
  if (power_of_two && f != 0.0f && std::fabs(std::frexp(f, &e)) != 0.5f) return false;
  *out = f;
  return true;
}

/// Channels per fp32 chunk of project_image_signs: as many whole channels as keep a lane's chain
/// within ceil(K/16) + 4 terms (integrity::projection_relative_bound(K) allows one more); 0 when
/// not even one channel fits (then the double kernel runs).
int64_t sign_chunk_channels(const ConvShape& s) {
  const int64_t taps = s.kh * s.kw;
  return ((s.patch() + 15) / 16 + 4) / taps;
}

template <int R, bool Abs>
bool project_patches_chunk(const float* x, const ConvShape& s, const GatherMap& rows,
                           const GatherMap& cols, const double* vecs, const double* vec_abs,
                           double* out, double* out_abs, double low, double high,
                           ProjectionSums sums) {
  constexpr int F = R + (Abs ? 1 : 0);
  const int64_t oh = s.out_h(), ow = s.out_w(), kdim = s.patch(), plane_out = oh * ow;
  const int64_t h = s.height, w = s.width, plane_in = h * w, channels = s.in_channels;
  const int64_t sh = s.geometry.stride_h, sw = s.geometry.stride_w;
  const int64_t ph = s.geometry.pad_h, pw = s.geometry.pad_w;
  const int64_t positions = s.positions();
  // The filters in natural patch order q = (c, i, j), interleaved: filter[q][F].
  std::vector<double> filter(static_cast<size_t>(F * kdim));
  for (int64_t j = 0; j < kdim; ++j) {
    const int64_t q = cols.index[static_cast<size_t>(j)];
    const double m = cols.mul[static_cast<size_t>(j)];
    for (int r = 0; r < R; ++r) filter[q * F + r] = m * vecs[r * kdim + j];
    if constexpr (Abs) filter[q * F + R] = std::fabs(m) * vec_abs[j];
  }
  // Padded plane: rows cover every tap of every output row, columns every tap of every tile.
  const int64_t tiles = (ow + kProjectTile - 1) / kProjectTile;
  // Tiles are up to 4 rows high (AVX-512): the last one may cover rows up to a multiple of 4.
  const int64_t tile_rows = 4, covered_rows = (oh + tile_rows - 1) / tile_rows * tile_rows;
  const int64_t hp = std::max(h + ph, (covered_rows - 1) * sh + s.kh) + ph;
  const int64_t wp = std::max(w + pw, (tiles * kProjectTile - 1) * sw + s.kw) + pw;
  // fp32 lanes where the check allows them and every product is exact (ProjectionSums), with
  // full 16-wide tiles; a padded plane as wide as those tiles read.
  const int64_t chunk_channels = sign_chunk_channels(s);
  const bool rounded_products = sums == ProjectionSums::kSignLanesRoundedProducts;
  bool fp32 = (sums == ProjectionSums::kSignLanes || rounded_products) && simd::avx512() &&
              ow >= kSignTileCols && (sw == 1 || sw == 2) && chunk_channels >= 1;
  // Every product with an input in range must be an fp32 normal: exact for power-of-two filter
  // entries, else within one rounding (relative 2^-24) when the check allows that.
  std::vector<float> filter32(fp32 ? filter.size() : 0);
  for (size_t q = 0; fp32 && q < filter.size(); ++q)
    fp32 = fp32_filter_value(filter[q], !rounded_products, &filter32[q]) &&
           (filter[q] == 0.0 ||
            (std::fabs(filter[q]) * low >= 0x1p-126 && std::fabs(filter[q]) * high <= 0x1p128));
  const std::vector<int64_t> offset = tap_offsets(s, channels, hp, wp);
  const int64_t tiles32 = (ow + kSignTileCols - 1) / kSignTileCols;
  const int64_t wp32 = std::max(w + pw, tiles32 * kSignTileCols * sw + s.kw) + pw;
  // A chunk's taps, one flat loop: offsets from the window corner in its first channel.
  const std::vector<int64_t> offset32 =
      fp32 ? tap_offsets(s, chunk_channels, hp, wp32) : std::vector<int64_t>();
  const bool threaded =
      !omp_in_parallel() && s.batch > 1 && positions * kdim * F >= (int64_t{1} << 22);
  bool in_range = true;
#pragma omp parallel if (threaded) reduction(&& : in_range)
  {
    std::vector<double> acc(static_cast<size_t>(F * plane_out));
    // A thread that flushes subnormals would break the exact fp32 sums: double for it.
    const bool use32 = fp32 && simd::gradual_underflow();
    std::vector<float> pad32(use32 ? static_cast<size_t>(channels * hp * wp32) : 0, 0.0f);
    std::vector<double> pad;  // the double kernel's, made when first needed
#pragma omp for schedule(static)
    for (int64_t n = 0; n < s.batch; ++n) {
      // The range check over the whole image in one vectorised loop (per image row, its
      // reduction cost as much as the loop), then the copy into the padded rows.
      int outside = 0;  // bitwise, not ||: the loop stays branch-free and vectorised
      const float flow = static_cast<float>(low), fhigh = static_cast<float>(high);
      const float* image = x + n * channels * plane_in;
#pragma omp simd reduction(| : outside)
      for (int64_t e = 0; e < channels * plane_in; ++e) {
        const float a = std::fabs(image[e]);
        outside |= static_cast<int>((a < flow) & (a != 0.0f)) | static_cast<int>(!(a < fhigh));
      }
      if (outside) in_range = false;
      bool done = false;
      if (use32) {
        for (int64_t c = 0; c < channels; ++c)
          for (int64_t y = 0; y < h; ++y)
            std::copy_n(image + c * plane_in + y * w, w,
                        pad32.data() + (c * hp + y + ph) * wp32 + pw);
        project_image_signs<R, Abs>(pad32.data(), s, hp, wp32, offset32.data(), filter32.data(),
                                    chunk_channels, acc.data());
        // An fp32 sum that overflowed (inputs near the top of the range): redone in double.
        done = std::all_of(acc.begin(), acc.end(), [](double a) { return std::isfinite(a); });
      }
      if (!done) {
        if (pad.empty()) pad.assign(static_cast<size_t>(channels * hp * wp), 0.0);
        for (int64_t c = 0; c < channels; ++c)
          for (int64_t y = 0; y < h; ++y) {
            double* dst = pad.data() + (c * hp + y + ph) * wp + pw;
            const float* src = image + c * plane_in + y * w;
#pragma omp simd
            for (int64_t e = 0; e < w; ++e) dst[e] = src[e];
          }
        if (sw == 1)
          project_image_any<R, Abs, 1>(pad.data(), s, wp, offset.data(), filter.data(), acc.data());
        else
          project_image_any<R, Abs, 0>(pad.data(), s, wp, offset.data(), filter.data(), acc.data());
      }
      for (int64_t pos = 0; pos < plane_out; ++pos) {
        const auto p = static_cast<size_t>(n * plane_out + pos);
        const int64_t row = rows.index[p];
        const double m = rows.mul[p];
        for (int r = 0; r < R; ++r) out[r * positions + row] = m * acc[r * plane_out + pos];
        if constexpr (Abs) out_abs[row] = std::fabs(m) * acc[R * plane_out + pos];
      }
    }
  }
  return in_range;
}

}  // namespace

bool project_blinded_patches(const float* x, const ConvShape& s, const GatherMap& rows,
                             const GatherMap& cols, const double* vecs, const double* vec_abs,
                             int rounds, double* out, double* out_abs, double low, double high,
                             ProjectionSums sums) {
  const int64_t kdim = s.patch(), positions = s.positions();
  bool in_range = true;
  // Up to 4 vectors per pass (their sums stay in registers); the absolute one with the first.
  using Chunk =
      bool (*)(const float*, const ConvShape&, const GatherMap&, const GatherMap&, const double*,
               const double*, double*, double*, double, double, ProjectionSums);
  // [with the absolute vector][vectors - 1]
  static constexpr Chunk kChunks[2][4] = {
      {project_patches_chunk<1, false>, project_patches_chunk<2, false>,
       project_patches_chunk<3, false>, project_patches_chunk<4, false>},
      {project_patches_chunk<1, true>, project_patches_chunk<2, true>,
       project_patches_chunk<3, true>, project_patches_chunk<4, true>}};
  for (int r0 = 0; r0 < rounds; r0 += 4) {
    const Chunk chunk = kChunks[r0 == 0 ? 1 : 0][std::min(4, rounds - r0) - 1];
    in_range &= chunk(x, s, rows, cols, vecs + r0 * kdim, vec_abs, out + r0 * positions, out_abs,
                      low, high, sums);
  }
  return in_range;
}

}  // namespace tempo::crypto::patch
