#include "worker/fault_injector.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "common/rounding_bounds.h"

namespace tempo::worker {

using protocol::Op;

namespace {

struct ModeName {
  FaultMode mode;
  const char* name;
};
constexpr ModeName kModes[] = {
    {FaultMode::kNone, "none"},
    {FaultMode::kRandom, "random"},
    {FaultMode::kPerturbOne, "perturb-one"},
    {FaultMode::kPair, "pair"},
    {FaultMode::kSignFlip, "sign-flip"},
    {FaultMode::kRescale, "rescale"},
    {FaultMode::kStale, "stale"},
    {FaultMode::kSwap, "swap"},
    {FaultMode::kZeros, "zeros"},
    {FaultMode::kWrongShape, "wrong-shape"},
};
// What `random` draws from: every mode but the adversarial `pair`, which escapes a round by design.
constexpr FaultMode kConcrete[] = {
    FaultMode::kPerturbOne, FaultMode::kSignFlip, FaultMode::kRescale,   FaultMode::kStale,
    FaultMode::kSwap,       FaultMode::kZeros,    FaultMode::kWrongShape};
constexpr size_t kHistory = 8;

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    const size_t p = s.find(sep, start);
    out.push_back(s.substr(start, p - start));
    if (p == std::string::npos) return out;
    start = p + 1;
  }
}

double parse_number(const std::string& s, const std::string& spec) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != s.size() || s.empty())
    throw std::invalid_argument("--fault " + spec + ": '" + s + "' is not a number");
  return v;
}

/// gamma_k for fp32 accumulation, the master's formula (docs/integrity.md).
double gamma32(int64_t k) { return rounding::gamma(k, rounding::kFp32Roundoff); }

/// The master's tolerance for the checked value that result entry `e` enters (its row for a
/// product, its projected position for a convolution), recomputed here from the operands with
/// the fp32 bound. A testing aid: perturbations sized from it land just past the tolerance.
double entry_tolerance(const protocol::Request& r, const BlindedTensor& a, const BlindedTensor& b,
                       const Shape& rs, int64_t e) {
  auto absf = [](float v) { return std::fabs(static_cast<double>(v)); };
  if (r.op == Op::kMatMul || r.op == Op::kBatchedMatMul) {
    const int o = a.rank() - 2;
    const int64_t ar = a.dim(o), ac = a.dim(o + 1), br = b.dim(o), bc = b.dim(o + 1);
    const int64_t m = rs[o], n = rs[o + 1], k = r.trans_a ? ar : ac;
    const int64_t batch = e / (m * n), i = (e % (m * n)) / n;
    const float* A = a.data() + batch * ar * ac;
    const float* B = b.data() + batch * br * bc;
    std::vector<double> bsum(static_cast<size_t>(k), 0.0);
    for (int64_t l = 0; l < k; ++l)
      for (int64_t j = 0; j < n; ++j) bsum[l] += absf(r.trans_b ? B[j * bc + l] : B[l * bc + j]);
    double t = 0;
    for (int64_t l = 0; l < k; ++l) t += absf(r.trans_a ? A[l * ac + i] : A[i * ac + l]) * bsum[l];
    // The check's own fp32 rounding of C·v and op(B)·v adds about twice its projection bound.
    return (gamma32(k) + 2.0 * rounding::projection_relative_bound(n)) * t;
  }
  const protocol::ConvParams& p = r.conv;
  // Operands as X [N,C,H,W], W [O,C,kh,kw], dY [N,O,Ho,Wo] whichever the op.
  const BlindedTensor* X = nullptr;
  const BlindedTensor* W = nullptr;
  const BlindedTensor* Y = nullptr;
  Shape xs, ws, ys;
  if (r.op == Op::kConvForward) {
    X = &a, W = &b, xs = a.shape(), ws = b.shape(), ys = rs;
  } else if (r.op == Op::kConvBackwardData) {
    Y = &a, W = &b, ys = a.shape(), ws = b.shape(), xs = rs;
  } else {
    X = &a, Y = &b, xs = a.shape(), ys = b.shape(), ws = rs;
  }
  const int64_t N = xs[0], C = xs[1], H = xs[2], Wd = xs[3], O = ws[0], kh = ws[2], kw = ws[3];
  const int64_t Ho = ys[2], Wo = ys[3];
  // Absolute sums over the projected axes.
  auto sum_over = [&](const BlindedTensor* t, int64_t P, int64_t Q, int64_t S, bool first) {
    // t [P,Q,S]: first: sum over P -> [Q,S]; else sum over Q -> [P,S].
    std::vector<double> out(static_cast<size_t>((first ? Q : P) * S), 0.0);
    for (int64_t i = 0; i < P; ++i)
      for (int64_t j = 0; j < Q; ++j)
        for (int64_t s = 0; s < S; ++s)
          out[(first ? j : i) * S + s] += absf(t->data()[(i * Q + j) * S + s]);
    return out;
  };
  double total = 0;
  int64_t inner = 0;
  if (r.op == Op::kConvForward) {
    const int64_t pos = e % (Ho * Wo), oy = pos / Wo, ox = pos % Wo;
    const auto xa = sum_over(X, N, C, H * Wd, true), wa = sum_over(W, O, C, kh * kw, true);
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < kh; ++i)
        for (int64_t j = 0; j < kw; ++j) {
          const int64_t h = oy * p.stride_h - p.pad_h + i, w = ox * p.stride_w - p.pad_w + j;
          if (h >= 0 && h < H && w >= 0 && w < Wd)
            total += xa[(c * H + h) * Wd + w] * wa[(c * kh + i) * kw + j];
        }
    inner = C * kh * kw;
  } else if (r.op == Op::kConvBackwardData) {
    const int64_t pos = e % (H * Wd), h0 = pos / Wd, w0 = pos % Wd;
    const auto ya = sum_over(Y, N, O, Ho * Wo, true), wa = sum_over(W, O, C, kh * kw, false);
    for (int64_t o = 0; o < O; ++o)
      for (int64_t i = 0; i < kh; ++i)
        for (int64_t j = 0; j < kw; ++j) {
          const int64_t ny = h0 + p.pad_h - i, nx = w0 + p.pad_w - j;
          if (ny < 0 || nx < 0 || ny % p.stride_h || nx % p.stride_w) continue;
          const int64_t oy = ny / p.stride_h, ox = nx / p.stride_w;
          if (oy < Ho && ox < Wo) total += ya[(o * Ho + oy) * Wo + ox] * wa[(o * kh + i) * kw + j];
        }
    inner = O * kh * kw;
  } else {
    const int64_t q = e % (kh * kw), i = q / kw, j = q % kw;
    const auto xa = sum_over(X, N, C, H * Wd, false), ya = sum_over(Y, N, O, Ho * Wo, false);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t oy = 0; oy < Ho; ++oy)
        for (int64_t ox = 0; ox < Wo; ++ox) {
          const int64_t h = oy * p.stride_h - p.pad_h + i, w = ox * p.stride_w - p.pad_w + j;
          if (h >= 0 && h < H && w >= 0 && w < Wd)
            total += ya[(n * Ho + oy) * Wo + ox] * xa[(n * H + h) * Wd + w];
        }
    inner = N * Ho * Wo;
  }
  return gamma32(inner) * total;
}

/// The entry that is checked together with `e` and cancels against it under half of the ±1
/// vectors: same row, next column (products); same projected position, next channel (convs).
/// -1 when there is none.
int64_t pair_partner(const Shape& s, int64_t e) {
  const int r = s.rank();
  const int axis = r == 4 ? 1 : r - 1;
  int64_t stride = 1;
  for (int i = axis + 1; i < r; ++i) stride *= s[i];
  const int64_t len = s[axis];
  if (len < 2) return -1;
  const int64_t idx = (e / stride) % len;
  return idx + 1 < len ? e + stride : e - stride;
}

bool same(const BlindedTensor& x, const BlindedTensor& y) {
  return x.shape() == y.shape() && x.numel() == y.numel() &&
         (x.numel() == 0 || std::memcmp(x.data(), y.data(), static_cast<size_t>(x.bytes())) == 0);
}

}  // namespace

const char* fault_mode_name(FaultMode mode) {
  for (const auto& m : kModes)
    if (m.mode == mode) return m.name;
  return "?";
}

FaultSpec FaultSpec::parse(const std::string& text) {
  const auto parts = split(text, ':');
  FaultSpec s;
  bool found = false;
  for (const auto& m : kModes)
    if (parts[0] == m.name) {
      s.mode = m.mode;
      found = true;
    }
  if (!found) {
    std::string valid;
    for (const auto& m : kModes) valid += std::string(valid.empty() ? "" : ", ") + m.name;
    throw std::invalid_argument("--fault: unknown mode '" + parts[0] + "' (valid: " + valid + ")");
  }
  if (s.mode == FaultMode::kRandom) s.fraction = 0.05;
  size_t next = 1;
  if (parts.size() > next) s.fraction = parse_number(parts[next++], text);
  if (s.mode == FaultMode::kRescale && parts.size() > next)
    s.factor = parse_number(parts[next++], text);
  if (parts.size() > next) s.seed = static_cast<uint64_t>(parse_number(parts[next++], text));
  if (parts.size() > next) throw std::invalid_argument("--fault " + text + ": too many fields");
  if (!(s.fraction >= 0.0 && s.fraction <= 1.0))
    throw std::invalid_argument("--fault " + text + ": the fraction must be in [0, 1]");
  return s;
}

std::string FaultSpec::to_string() const {
  return std::string(fault_mode_name(mode)) + ":" + std::to_string(fraction);
}

FaultInjector::FaultInjector(FaultSpec spec) : spec_(spec), rng_(spec.seed) {}

std::optional<BlindedTensor> FaultInjector::earlier_result(const Shape& shape) const {
  for (auto it = history_.rbegin(); it != history_.rend(); ++it)
    if (it->shape() == shape) return *it;
  return std::nullopt;
}

BlindedTensor FaultInjector::corrupt(FaultMode mode, const protocol::Request& r,
                                     const BlindedTensor& a, const BlindedTensor& b,
                                     const BlindedTensor& honest) {
  const int64_t n = honest.numel();
  switch (mode) {
    case FaultMode::kPerturbOne:
    case FaultMode::kPair: {
      if (n == 0) return honest;
      const int64_t e = static_cast<int64_t>(rng_() % static_cast<uint64_t>(n));
      const int64_t partner = mode == FaultMode::kPair ? pair_partner(honest.shape(), e) : -1;
      // Past the detection threshold 2·tau (plus a floor for all-zero operands).
      const double d = 3.0 * entry_tolerance(r, a, b, honest.shape(), e) + 1e-25;
      BlindedTensor out = honest.clone();
      float* v = out.mutable_data();
      v[e] = static_cast<float>(v[e] + d);
      if (partner >= 0) v[partner] = static_cast<float>(v[partner] - d);
      return out;
    }
    case FaultMode::kSignFlip:
    case FaultMode::kRescale: {
      BlindedTensor out = honest.clone();
      const float f = mode == FaultMode::kSignFlip ? -1.0f : static_cast<float>(spec_.factor);
      float* v = out.mutable_data();
      for (int64_t i = 0; i < n; ++i) v[i] *= f;
      return out;
    }
    case FaultMode::kStale:
      return earlier_result(honest.shape()).value_or(honest);
    case FaultMode::kSwap: {
      // Answer with the previous request's result; this one is owed to the next request.
      if (history_.empty()) return honest;
      held_ = honest;
      return history_.back();
    }
    case FaultMode::kZeros: {
      BlindedTensor out = BlindedTensor::allocate(honest.shape());
      std::fill(out.mutable_data(), out.mutable_data() + n, 0.0f);
      return out;
    }
    case FaultMode::kWrongShape: {
      Shape s = honest.shape();
      if (s.rank() == 0) return honest;
      const int i = s.rank() == 3 ? 1 : 0;  // rows: of the matrix, or the batch of images
      s[i] = s[i] > 1 ? s[i] - 1 : s[i] + 1;
      BlindedTensor out = BlindedTensor::allocate(s);
      const int64_t keep = std::min(n, out.numel());
      std::copy(honest.data(), honest.data() + keep, out.mutable_data());
      std::fill(out.mutable_data() + keep, out.mutable_data() + out.numel(), 1.0f);
      return out;
    }
    case FaultMode::kNone:
    case FaultMode::kRandom:
      break;
  }
  return honest;
}

void FaultInjector::apply(const protocol::Request& r, const BlindedTensor& a,
                          const BlindedTensor& b, BlindedTensor* result) {
  if (spec_.mode == FaultMode::kNone) return;
  const BlindedTensor honest = *result;
  BlindedTensor out = honest;
  if (held_) {
    // swap: the previous request's result is owed to this one.
    out = std::move(*held_);
    held_.reset();
  } else if (std::uniform_real_distribution<double>(0.0, 1.0)(rng_) < spec_.fraction) {
    FaultMode mode = spec_.mode;
    if (mode == FaultMode::kRandom)
      mode = kConcrete[rng_() % (sizeof kConcrete / sizeof kConcrete[0])];
    out = corrupt(mode, r, a, b, honest);
  }
  if (!same(out, honest)) ++faults_;
  *result = std::move(out);
  if (spec_.mode == FaultMode::kStale || spec_.mode == FaultMode::kSwap ||
      spec_.mode == FaultMode::kRandom) {
    history_.push_back(honest);
    if (history_.size() > kHistory) history_.pop_front();
  }
}

}  // namespace tempo::worker
