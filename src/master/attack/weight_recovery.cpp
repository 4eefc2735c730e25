#include "master/attack/weight_recovery.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <stdexcept>

#include "master/nn/conv2d.h"
#include "master/nn/linear.h"

namespace tempo::attack {

namespace {

/// The real c in [-period/2, period/2) that minimises the circular spread of values - c.
double circular_mean(const std::vector<double>& v, double period) {
  double s = 0, c = 0;
  for (double x : v) {
    s += std::sin(2 * std::numbers::pi * x / period);
    c += std::cos(2 * std::numbers::pi * x / period);
  }
  if (s == 0 && c == 0) return 0;
  return std::atan2(s, c) * period / (2 * std::numbers::pi);
}

/// Integer k minimising |x - c - period·k|.
int round_about(double x, double c, double period) {
  return static_cast<int>(std::lround((x - c) / period));
}

double stddev(const std::vector<int>& v) {
  if (v.empty()) return 0;
  double m = 0, s = 0;
  for (int x : v) m += x;
  m /= static_cast<double>(v.size());
  for (int x : v) s += (x - m) * (x - m);
  return std::sqrt(s / static_cast<double>(v.size()));
}

/// Zeroes the layer's bias, if it has one.
void zero_bias(nn::Module& m) {
  std::vector<nn::Parameter*> params;
  m.local_parameters(params);
  for (nn::Parameter* p : params)
    if (p->name == "bias") p->value.fill(0.0f);
}

}  // namespace

UnitWeight unit_weight(ProductForm form, const Tensor& t) {
  UnitWeight u;
  switch (form) {
    case ProductForm::kLinear:  // [in, out]
      u.in = t.dim(0), u.out = t.dim(1), u.g = 1;
      u.w.assign(t.data(), t.data() + t.numel());
      break;
    case ProductForm::kPatchConv:  // [O, K] -> rows K
      u.in = t.dim(1), u.out = t.dim(0), u.g = 1;
      u.w.resize(static_cast<size_t>(t.numel()));
      for (int64_t o = 0; o < u.out; ++o)
        for (int64_t k = 0; k < u.in; ++k) u.at(k, o, 0) = t[o * u.in + k];
      break;
    case ProductForm::kChannelConv:  // [O, C, kh, kw] -> rows C
      u.in = t.dim(1), u.out = t.dim(0), u.g = t.dim(2) * t.dim(3);
      u.w.resize(static_cast<size_t>(t.numel()));
      for (int64_t o = 0; o < u.out; ++o)
        for (int64_t c = 0; c < u.in; ++c)
          for (int64_t i = 0; i < u.g; ++i) u.at(c, o, i) = t[(o * u.in + c) * u.g + i];
      break;
  }
  return u;
}

UnitInput unit_input(ProductForm form, const Tensor& t) {
  UnitInput x;
  x.rows = t.dim(0);
  x.units = t.dim(1);
  x.q = form == ProductForm::kChannelConv ? t.dim(2) * t.dim(3) : 1;
  x.a.assign(t.data(), t.data() + t.numel());
  return x;
}

void install_weight(const RecordedLayer& layer, const UnitWeight& u) {
  if (auto* lin = dynamic_cast<nn::Linear*>(layer.module)) {
    Tensor& w = lin->weight().value;
    if (w.dim(0) != u.in || w.dim(1) != u.out)
      throw std::invalid_argument(layer.path + ": recovered weight has the wrong shape");
    for (int64_t i = 0; i < u.in * u.out; ++i) w[i] = u.w[static_cast<size_t>(i)];
    zero_bias(*layer.module);
    return;
  }
  auto* conv = dynamic_cast<nn::Conv2d*>(layer.module);
  if (!conv) throw std::logic_error(layer.path + ": not a Linear or Conv2d");
  Tensor& w = conv->weight().value;
  const int64_t o_n = w.dim(0), c_n = w.dim(1), kk = w.dim(2) * w.dim(3);
  if (o_n != u.out || c_n * kk != u.in * u.g)
    throw std::invalid_argument(layer.path + ": recovered weight has the wrong shape");
  UnitWeight& uw = const_cast<UnitWeight&>(u);
  for (int64_t o = 0; o < o_n; ++o)
    for (int64_t c = 0; c < c_n; ++c)
      for (int64_t t = 0; t < kk; ++t)
        w[(o * c_n + c) * kk + t] = u.g == 1 ? uw.at(c * kk + t, o, 0) : uw.at(c, o, t);
  zero_bias(*layer.module);
}

std::vector<int> row_exponents(const UnitInput& x) {
  const int64_t width = x.units * x.q;
  std::vector<double> logs(static_cast<size_t>(x.rows), 0.0), valid;
  for (int64_t r = 0; r < x.rows; ++r) {
    double s = 0;
    for (int64_t k = 0; k < width; ++k) s += double{x.a[r * width + k]} * x.a[r * width + k];
    logs[r] = s > 0 ? 0.5 * std::log2(s) : NAN;
    if (s > 0) valid.push_back(logs[r]);
  }
  const double c = circular_mean(valid, 1.0);
  std::vector<int> e(static_cast<size_t>(x.rows), 0);
  for (int64_t r = 0; r < x.rows; ++r)
    if (!std::isnan(logs[r])) e[r] = round_about(logs[r], c, 1.0);
  return e;
}

UnscaleStats unscale(UnitWeight& w, const UnitInput& x, double reference_norm) {
  if (x.units != w.in) throw std::invalid_argument("unscale: input and weight do not match");
  UnscaleStats st;
  const int64_t width = x.units * x.q, cols = w.out * w.g;
  // Row norms of the input remove the row scales r exactly (up to the natural row norm).
  std::vector<double> inv_row(static_cast<size_t>(x.rows), 0.0);
  for (int64_t r = 0; r < x.rows; ++r) {
    double s = 0;
    for (int64_t k = 0; k < width; ++k) s += double{x.a[r * width + k]} * x.a[r * width + k];
    inv_row[r] = s > 0 ? 1.0 / std::sqrt(s) : 0.0;
  }
  std::vector<double> col_ms(static_cast<size_t>(w.in), 0.0);
  std::vector<int64_t> positive(static_cast<size_t>(w.in), 0),
      negative(static_cast<size_t>(w.in), 0);
  for (int64_t r = 0; r < x.rows; ++r)
    for (int64_t j = 0; j < x.units; ++j)
      for (int64_t t = 0; t < x.q; ++t) {
        const double v = x.at(r, j, t) * inv_row[r];
        col_ms[j] += v * v;
        positive[j] += v > 0;
        negative[j] += v < 0;
      }
  // log2|W'[j][o]| = log2|W[j][o]| - e_j + f_o: robust additive row and column effects by median
  // polish (a norm would be dominated by the few largest scales of the other side).
  std::vector<float> logw(w.w.size());
  for (size_t i = 0; i < w.w.size(); ++i) logw[i] = w.w[i] != 0 ? std::log2(std::abs(w.w[i])) : NAN;
  std::vector<double> row_eff(static_cast<size_t>(w.in), 0.0),
      col_eff(static_cast<size_t>(w.out), 0.0);
  std::vector<float> buf;
  auto median = [&]() -> double {
    if (buf.empty()) return NAN;
    auto mid = buf.begin() + static_cast<std::ptrdiff_t>(buf.size() / 2);
    std::nth_element(buf.begin(), mid, buf.end());
    return *mid;
  };
  for (int it = 0; it < 4; ++it) {
    for (int64_t j = 0; j < w.in; ++j) {
      buf.clear();
      for (int64_t o = 0; o < w.out; ++o)
        for (int64_t t = 0; t < w.g; ++t) {
          const float v = logw[(j * w.out + o) * w.g + t];
          if (!std::isnan(v)) buf.push_back(static_cast<float>(v - col_eff[o]));
        }
      row_eff[j] = median();
    }
    for (int64_t o = 0; o < w.out; ++o) {
      buf.clear();
      for (int64_t j = 0; j < w.in; ++j) {
        if (std::isnan(row_eff[j])) continue;
        for (int64_t t = 0; t < w.g; ++t) {
          const float v = logw[(j * w.out + o) * w.g + t];
          if (!std::isnan(v)) buf.push_back(static_cast<float>(v - row_eff[j]));
        }
      }
      col_eff[o] = median();
      if (std::isnan(col_eff[o])) col_eff[o] = 0;
    }
  }
  // Input exponents: the input carries +e_j, the weight row -e_j: their difference is 2·e_j plus
  // a natural term (period 2); inputs that are always zero fall back on the weight alone.
  std::vector<double> ratio, wonly;
  for (int64_t j = 0; j < w.in; ++j) {
    if (std::isnan(row_eff[j])) continue;
    wonly.push_back(-row_eff[j]);
    if (col_ms[j] > 0) ratio.push_back(0.5 * std::log2(col_ms[j]) - row_eff[j]);
  }
  const double c_ratio = circular_mean(ratio, 2.0), c_w = circular_mean(wonly, 1.0);
  std::vector<int> e_in;
  for (int64_t j = 0; j < w.in; ++j) {
    if (std::isnan(row_eff[j])) continue;
    const int e = col_ms[j] > 0 ? round_about(0.5 * std::log2(col_ms[j]) - row_eff[j], c_ratio, 2.0)
                                : round_about(-row_eff[j], c_w, 1.0);
    e_in.push_back(e);
    // A one-signed input (after a ReLU) shows sign(s_j); a mixed one (raw data) does not.
    const int64_t nonzero = positive[j] + negative[j];
    const bool flip = nonzero > 0 && negative[j] >= nonzero * 99 / 100 && negative[j] > 0;
    st.signs_flipped += flip;
    st.mixed_sign_inputs += nonzero > 0 && !flip && positive[j] < nonzero * 99 / 100;
    const float f = static_cast<float>(std::ldexp(flip ? -1.0 : 1.0, e));
    for (int64_t k = 0; k < cols; ++k) w.w[j * cols + k] *= f;
  }
  // Output exponents: the column effects, rounded about their circular mean (period 1).
  std::vector<double> logs(col_eff.begin(), col_eff.end());
  const double c_out = circular_mean(logs, 1.0);
  std::vector<int> e_out;
  for (int64_t o = 0; o < w.out; ++o) {
    const int e = round_about(col_eff[o], c_out, 1.0);
    e_out.push_back(e);
    const float f = static_cast<float>(std::ldexp(1.0, -e));
    for (int64_t j = 0; j < w.in; ++j)
      for (int64_t t = 0; t < w.g; ++t) w.at(j, o, t) *= f;
  }
  // One global power of two, from the reference norm.
  double norm = 0;
  for (float v : w.w) norm += double{v} * v;
  norm = std::sqrt(norm);
  if (norm > 0 && reference_norm > 0) {
    const float f = static_cast<float>(std::exp2(std::round(std::log2(reference_norm / norm))));
    for (float& v : w.w) v *= f;
  }
  st.input_exponent_spread = stddev(e_in);
  st.output_exponent_spread = stddev(e_out);
  return st;
}

}  // namespace tempo::attack
