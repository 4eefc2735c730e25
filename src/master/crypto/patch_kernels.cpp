#include "master/crypto/patch_kernels.h"

#include <omp.h>

#include <algorithm>
#include <vector>

#include "master/crypto/row_kernels.h"

namespace tempo::crypto::patch {

namespace {
// Positions handled together so that each cache line of a channel plane is used 16 times
// while it is in L1 (the NCHW side is read or written with a stride of one plane).
constexpr int64_t kTile = 16;
}  // namespace

void scatter_rows_from_nchw(const float* src, int64_t batch, int64_t channels, int64_t plane,
                            const GatherMap& rows, const GatherMap& cols, float* dst) {
  const int64_t tiles = (plane + kTile - 1) / kTile;
  const int32_t* ci = cols.index.data();
  const float* cm = cols.mul.data();
  // Rows are written at permuted positions: own the lines of the next tile's rows early.
  const int64_t positions = batch * plane;
#pragma omp parallel if (batch * plane * channels > 32768)
  {
    // The tile transposed to [kTile][channels] first: reading the channel planes directly, one
    // line per channel 4 KiB apart, maps every line to the same L1 set and thrashes it. Each
    // row is then a gather within one contiguous, L1-resident row.
    std::vector<float> tile(static_cast<size_t>(kTile * channels));
#pragma omp for schedule(static) collapse(2)
    for (int64_t n = 0; n < batch; ++n)
      for (int64_t t = 0; t < tiles; ++t) {
        const float* img = src + n * channels * plane;
        const int64_t begin = t * kTile, count = std::min(plane, begin + kTile) - begin;
        // One line per channel plane, planes apart: more streams than the hardware prefetcher
        // follows, so the lines of the tile after next are requested now.
        const bool prefetch_ahead = begin + 3 * kTile <= plane;
        for (int64_t c = 0; c < channels; ++c) {
          const float* line = img + c * plane + begin;
          if (prefetch_ahead) prefetch_row(line + 2 * kTile, kTile);
          for (int64_t k = 0; k < count; ++k) tile[static_cast<size_t>(k * channels + c)] = line[k];
        }
        for (int64_t k = 0; k < count; ++k) {
          const auto p = static_cast<size_t>(n * plane + begin + k);
          if (static_cast<int64_t>(p) + kTile < positions)
            prefetch_row(dst + static_cast<int64_t>(rows.index[p + kTile]) * channels, channels);
          gather_row(tile.data() + k * channels, ci, cm, rows.mul[p], channels,
                     dst + static_cast<int64_t>(rows.index[p]) * channels);
        }
      }
  }
}

void gather_nchw_from_rows(const float* src, int64_t batch, int64_t channels, int64_t plane,
                           const GatherMap& rows, const GatherMap& cols, float* dst) {
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
      }
      float* img = dst + n * channels * plane + begin;
      for (int64_t o = 0; o < channels; ++o) {
        const int32_t col = ci[o];
        float* d = img + o * plane;
        for (int64_t k = 0; k < count; ++k) d[k] = srow[k][col] * (rm[k] * cm[o]);
      }
    }
}

void im2col_blind(const float* x, const ConvShape& s, const GatherMap& rows, const GatherMap& cols,
                  float* dst) {
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

void unblind_col2im(const float* src, const ConvShape& s, const GatherMap& rows,
                    const GatherMap& cols, float* dx) {
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

}  // namespace tempo::crypto::patch
