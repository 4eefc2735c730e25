#include "master/integrity/conv_check.h"

#include <omp.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <vector>

#include "master/crypto/csprng.h"
#include "master/integrity/projection.h"
#include "master/integrity/random_signs.h"

namespace tempo::integrity {

namespace {

using Vec = std::vector<double>;

/// Rows [p0, p1) of reduce_first, columns [r0, r0 + n), added into out and out_abs.
void accumulate_rows(const float* t, int64_t p0, int64_t p1, int64_t R, int64_t r0, int64_t n,
                     const double* coef, double* out, double* out_abs) {
  for (int64_t p = p0; p < p1; ++p) {
    const float* row = t + p * R + r0;
    const double c = coef[p];
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) out[i] += c * static_cast<double>(row[i]);
    if (out_abs) {
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) out_abs[i] += std::fabs(static_cast<double>(row[i]));
    }
  }
}

/// out[r] = Σ_p coef[p]·t[p,r] and out_abs[r] = Σ_p |t[p,r]| (out_abs may be null): one pass.
/// Wide tensors split their columns over the threads; narrow ones (a channel-mode activation
/// seen as N·C rows of H·W) split their rows, each thread summing into partials of its own, so
/// that no full pass over an activation runs on one thread. The check's tolerance holds for
/// any summation order.
void reduce_first(const float* t, int64_t P, int64_t R, const double* coef, double* out,
                  double* out_abs) {
  constexpr int64_t kChunk = 1024;
  const int64_t chunks = (R + kChunk - 1) / kChunk;
  const int64_t threads =
      P * R >= kParallelElements && !omp_in_parallel() ? omp_get_max_threads() : 1;
  if (chunks >= threads || P < 2 * threads) {
#pragma omp parallel for schedule(static) if (threads > 1 && chunks > 1)
    for (int64_t ch = 0; ch < chunks; ++ch) {
      const int64_t r0 = ch * kChunk, n = std::min(kChunk, R - r0);
      std::fill(out + r0, out + r0 + n, 0.0);
      if (out_abs) std::fill(out_abs + r0, out_abs + r0 + n, 0.0);
      accumulate_rows(t, 0, P, R, r0, n, coef, out + r0, out_abs ? out_abs + r0 : nullptr);
    }
    return;
  }
  const int64_t blocks = threads, lanes = out_abs ? 2 : 1;
  std::vector<double> partial(static_cast<size_t>(blocks * lanes * R), 0.0);
#pragma omp parallel for schedule(static) num_threads(static_cast <int>(threads))
  for (int64_t b = 0; b < blocks; ++b) {
    double* o = partial.data() + b * lanes * R;
    for (int64_t r0 = 0; r0 < R; r0 += kChunk)
      accumulate_rows(t, P * b / blocks, P * (b + 1) / blocks, R, r0, std::min(kChunk, R - r0),
                      coef, o + r0, out_abs ? o + R + r0 : nullptr);
  }
  std::fill(out, out + R, 0.0);
  if (out_abs) std::fill(out_abs, out_abs + R, 0.0);
  for (int64_t b = 0; b < blocks; ++b) {
    const double* o = partial.data() + b * lanes * R;
    for (int64_t r = 0; r < R; ++r) out[r] += o[r];
    if (out_abs)
      for (int64_t r = 0; r < R; ++r) out_abs[r] += o[R + r];
  }
}

/// t [P,Q,S] -> out [P,S] = Σ_q coef[q]·t[p,q,s] (and the absolute sums); the P slices in
/// parallel when each is too narrow to split.
void reduce_middle(const float* t, int64_t P, int64_t Q, int64_t S, const double* coef, double* out,
                   double* out_abs) {
#pragma omp parallel for schedule(static) if (P * Q * S >= kParallelElements && P > 1)
  for (int64_t p = 0; p < P; ++p)
    reduce_first(t + p * Q * S, Q, S, coef, out + p * S, out_abs ? out_abs + p * S : nullptr);
}

/// Every (channel, output position, kernel tap) of a convolution with its input position:
/// f(c, in_index, out_index, tap_index), indices within one channel's plane.
template <class F>
void for_each_tap(int64_t C, int64_t H, int64_t W, int64_t Ho, int64_t Wo, int64_t kh, int64_t kw,
                  const protocol::ConvParams& p, F&& f) {
  for (int64_t c = 0; c < C; ++c)
    for (int64_t oy = 0; oy < Ho; ++oy)
      for (int64_t i = 0; i < kh; ++i) {
        const int64_t h = oy * p.stride_h - p.pad_h + i;
        if (h < 0 || h >= H) continue;
        for (int64_t ox = 0; ox < Wo; ++ox)
          for (int64_t j = 0; j < kw; ++j) {
            const int64_t w = ox * p.stride_w - p.pad_w + j;
            if (w < 0 || w >= W) continue;
            f(c, h * W + w, oy * Wo + ox, i * kw + j);
          }
      }
}

CheckOutcome wrong_shape(const BlindedTensor& got, const Shape& expected) {
  CheckOutcome o;
  o.passed = false;
  o.worst_ratio = INFINITY;
  o.reason = "result has shape " + got.shape().to_string() + " instead of " + expected.to_string();
  return o;
}

/// Compares the projected result with the TEE's small convolution, value by value.
/// `projected`, `projected_abs`: the result's projection and absolute sums; `reference`,
/// `reference_abs`: the small convolution on the projected operands and on their absolute sums.
void compare(const double* projected, const double* projected_abs, const double* reference,
             const double* reference_abs, int64_t size, int64_t inner, int64_t projected_terms,
             Precision precision, int round, const char* what, CheckOutcome* out) {
  const double g = dot_relative_bound(inner, precision);
  const double floor = static_cast<double>(projected_terms) * dot_absolute_bound(inner);
  const double check = 2.0 * gamma(projected_terms + inner + 4, kCheckRoundoff);
  for (int64_t s = 0; s < size; ++s) {
    const double tau = g * reference_abs[s] + floor + check * (projected_abs[s] + reference_abs[s]);
    const double z = std::fabs(projected[s] - reference[s]);
    double ratio;
    if (!std::isfinite(projected_abs[s]) || !std::isfinite(z) || !std::isfinite(tau))
      ratio = INFINITY;  // nothing passes against an infinite tolerance (it would pass anything)
    else if (tau > 0.0)
      ratio = z / tau;
    else
      ratio = z == 0.0 ? 0.0 : INFINITY;
    if (ratio > out->worst_ratio) {
      out->worst_ratio = ratio;
      if (ratio > 1.0) {
        char buf[200];
        std::snprintf(
            buf, sizeof buf,
            "%s value %lld, round %d: projected discrepancy %.3g, tolerance %.3g (%.3g x)", what,
            static_cast<long long>(s), round + 1, z, tau, ratio);
        out->reason = buf;
      }
    }
  }
  out->passed = out->worst_ratio <= 1.0;
}

/// `sizes.size()` arrays of the given lengths, carved from a per-thread scratch buffer that is
/// reused from check to check: a channel-mode check at batch 128 needs megabytes of them, which
/// fresh vectors would zero and fault in every time. Their contents start undefined.
template <size_t kArrays>
std::array<double*, kArrays> scratch(const std::array<int64_t, kArrays>& sizes) {
  thread_local std::vector<double> buffer;
  int64_t total = 0;
  for (int64_t n : sizes) total += n;
  if (buffer.size() < static_cast<size_t>(total)) buffer.resize(static_cast<size_t>(total));
  std::array<double*, kArrays> arrays{};
  double* next = buffer.data();
  for (size_t i = 0; i < kArrays; ++i) {
    arrays[i] = next;
    next += sizes[i];
  }
  return arrays;
}

void check_rounds(int rounds) {
  if (rounds < 1) throw std::invalid_argument("conv check: rounds must be >= 1");
}

}  // namespace

CheckOutcome check_conv_forward(const BlindedTensor& x, const BlindedTensor& w,
                                const protocol::ConvParams& conv, const BlindedTensor& y,
                                int rounds, Precision precision) {
  check_rounds(rounds);
  if (x.rank() != 4 || w.rank() != 4 || x.dim(1) != w.dim(1))
    throw std::invalid_argument("check_conv_forward: bad operands");
  const int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
  const int64_t O = w.dim(0), kh = w.dim(2), kw = w.dim(3);
  const int64_t Ho = (H + 2 * conv.pad_h - kh) / conv.stride_h + 1;
  const int64_t Wo = (W + 2 * conv.pad_w - kw) / conv.stride_w + 1;
  const Shape expected{N, O, Ho, Wo};
  if (y.shape() != expected || y.numel() != expected.numel()) return wrong_shape(y, expected);
  crypto::Csprng rng;
  CheckOutcome out;
  const int64_t HW = H * W, K = kh * kw, S = Ho * Wo;
  // Named pointers rather than structured bindings: the lambda below captures them.
  const std::array<double*, 8> buffers = scratch<8>({C * HW, C * HW, C * K, C * K, S, S, S, S});
  double *const xt = buffers[0], *const xa = buffers[1], *const wt = buffers[2],
                *const wa = buffers[3];
  double *const yt = buffers[4], *const ya = buffers[5], *const ref = buffers[6],
                *const ref_abs = buffers[7];
  for (int r = 0; r < rounds; ++r) {
    const Vec a = random_signs(rng, N), b = random_signs(rng, O);
    const bool first = r == 0;
    reduce_first(x.data(), N, C * HW, a.data(), xt, first ? xa : nullptr);
    reduce_first(w.data(), O, C * K, b.data(), wt, first ? wa : nullptr);
    Vec ab(N * O);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t o = 0; o < O; ++o) ab[n * O + o] = a[n] * b[o];
    reduce_first(y.data(), N * O, S, ab.data(), yt, first ? ya : nullptr);
    std::fill(ref, ref + S, 0.0);
    if (first) std::fill(ref_abs, ref_abs + S, 0.0);
    for_each_tap(C, H, W, Ho, Wo, kh, kw, conv, [&](int64_t c, int64_t in, int64_t o, int64_t k) {
      ref[o] += xt[c * HW + in] * wt[c * K + k];
      if (first) ref_abs[o] += xa[c * HW + in] * wa[c * K + k];
    });
    compare(yt, ya, ref, ref_abs, S, C * K, N * O, precision, r, "conv forward", &out);
  }
  return out;
}

CheckOutcome check_conv_backward_data(const BlindedTensor& dy, const BlindedTensor& w,
                                      const protocol::ConvParams& conv, const BlindedTensor& dx,
                                      int rounds, Precision precision) {
  check_rounds(rounds);
  if (dy.rank() != 4 || w.rank() != 4 || dy.dim(1) != w.dim(0) || dx.rank() != 4)
    return wrong_shape(dx, Shape{dy.rank() == 4 ? dy.dim(0) : 0, w.rank() == 4 ? w.dim(1) : 0});
  const int64_t N = dy.dim(0), O = dy.dim(1), Ho = dy.dim(2), Wo = dy.dim(3);
  const int64_t C = w.dim(1), kh = w.dim(2), kw = w.dim(3);
  const int64_t H = dx.dim(2), W = dx.dim(3);
  if (dx.dim(0) != N || dx.dim(1) != C || dx.numel() != dx.shape().numel() ||
      (H + 2 * conv.pad_h - kh) / conv.stride_h + 1 != Ho ||
      (W + 2 * conv.pad_w - kw) / conv.stride_w + 1 != Wo)
    return wrong_shape(dx, Shape{N, C, H, W});
  crypto::Csprng rng;
  CheckOutcome out;
  const int64_t HW = H * W, K = kh * kw, S = Ho * Wo;
  // Named pointers rather than structured bindings: the lambda below captures them.
  const std::array<double*, 8> buffers = scratch<8>({O * S, O * S, O * K, O * K, HW, HW, HW, HW});
  double *const gt = buffers[0], *const ga = buffers[1], *const wt = buffers[2],
                *const wa = buffers[3];
  double *const xt = buffers[4], *const xa = buffers[5], *const ref = buffers[6],
                *const ref_abs = buffers[7];
  for (int r = 0; r < rounds; ++r) {
    const Vec a = random_signs(rng, N), b = random_signs(rng, C);
    const bool first = r == 0;
    reduce_first(dy.data(), N, O * S, a.data(), gt, first ? ga : nullptr);
    reduce_middle(w.data(), O, C, K, b.data(), wt, first ? wa : nullptr);
    Vec ab(N * C);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < C; ++c) ab[n * C + c] = a[n] * b[c];
    reduce_first(dx.data(), N * C, HW, ab.data(), xt, first ? xa : nullptr);
    std::fill(ref, ref + HW, 0.0);
    if (first) std::fill(ref_abs, ref_abs + HW, 0.0);
    for_each_tap(O, H, W, Ho, Wo, kh, kw, conv, [&](int64_t o, int64_t in, int64_t p, int64_t k) {
      ref[in] += gt[o * S + p] * wt[o * K + k];
      if (first) ref_abs[in] += ga[o * S + p] * wa[o * K + k];
    });
    compare(xt, xa, ref, ref_abs, HW, O * K, N * C, precision, r, "conv backward-data", &out);
  }
  return out;
}

CheckOutcome check_conv_backward_weights(const BlindedTensor& x, const BlindedTensor& dy,
                                         const protocol::ConvParams& conv, const BlindedTensor& dw,
                                         int rounds, Precision precision) {
  check_rounds(rounds);
  if (x.rank() != 4 || dy.rank() != 4 || x.dim(0) != dy.dim(0) || dw.rank() != 4)
    return wrong_shape(dw, Shape{dy.rank() == 4 ? dy.dim(1) : 0, x.rank() == 4 ? x.dim(1) : 0});
  const int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
  const int64_t O = dy.dim(1), Ho = dy.dim(2), Wo = dy.dim(3);
  const int64_t kh = dw.dim(2), kw = dw.dim(3);
  if (dw.dim(0) != O || dw.dim(1) != C || dw.numel() != dw.shape().numel() ||
      (H + 2 * conv.pad_h - kh) / conv.stride_h + 1 != Ho ||
      (W + 2 * conv.pad_w - kw) / conv.stride_w + 1 != Wo)
    return wrong_shape(dw, Shape{O, C, kh, kw});
  crypto::Csprng rng;
  CheckOutcome out;
  const int64_t HW = H * W, K = kh * kw, S = Ho * Wo;
  // Named pointers rather than structured bindings: the lambda below captures them.
  const std::array<double*, 8> buffers = scratch<8>({N * HW, N * HW, N * S, N * S, K, K, K, K});
  double *const xt = buffers[0], *const xa = buffers[1], *const gt = buffers[2],
                *const ga = buffers[3];
  double *const wt = buffers[4], *const wa = buffers[5], *const ref = buffers[6],
                *const ref_abs = buffers[7];
  for (int r = 0; r < rounds; ++r) {
    const Vec a = random_signs(rng, C), b = random_signs(rng, O);
    const bool first = r == 0;
    reduce_middle(x.data(), N, C, HW, a.data(), xt, first ? xa : nullptr);
    reduce_middle(dy.data(), N, O, S, b.data(), gt, first ? ga : nullptr);
    Vec ba(O * C);
    for (int64_t o = 0; o < O; ++o)
      for (int64_t c = 0; c < C; ++c) ba[o * C + c] = b[o] * a[c];
    reduce_first(dw.data(), O * C, K, ba.data(), wt, first ? wa : nullptr);
    std::fill(ref, ref + K, 0.0);
    if (first) std::fill(ref_abs, ref_abs + K, 0.0);
    for_each_tap(N, H, W, Ho, Wo, kh, kw, conv, [&](int64_t n, int64_t in, int64_t p, int64_t k) {
      ref[k] += gt[n * S + p] * xt[n * HW + in];
      if (first) ref_abs[k] += ga[n * S + p] * xa[n * HW + in];
    });
    compare(wt, wa, ref, ref_abs, K, N * S, O * C, precision, r, "conv backward-weights", &out);
  }
  return out;
}

}  // namespace tempo::integrity
