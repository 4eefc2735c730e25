#include "master/crypto/key_space.h"

#include <cmath>
#include <cstdio>

namespace tempo::crypto {

double TensorKeySpace::bits() const {
  double b = 0;
  for (const DimensionEntropy& d : dims) b += d.bits();
  return b;
}

std::string OperationKeySpace::summary() const {
  char buf[128];
  std::snprintf(buf, sizeof(buf), "%s: forward key %.0f bits", operation.c_str(), forward_key_bits);
  std::string s = buf;
  for (const TensorKeySpace& t : tensors) {
    std::snprintf(buf, sizeof(buf), ", %s %.0f bits", t.name.c_str(), t.bits());
    s += buf;
  }
  return s;
}

double KeySpace::log2_factorial(int64_t n) {
  if (n < 2) return 0.0;
  return std::lgamma(static_cast<double>(n) + 1.0) / std::log(2.0);
}

double KeySpace::scale_bits_per_entry(bool with_sign) const {
  return scale_bits_per_entry(with_sign, params_.distribution);
}

double KeySpace::scale_bits_per_entry(bool with_sign, ScaleDistribution distribution) const {
  double b = 0;
  if (params_.sigma > 0)
    b = distribution == ScaleDistribution::kPowerOfTwo ? std::log2(2.0 * params_.sigma + 1.0)
                                                       : std::log2(2.0 * params_.sigma) + 23.0;
  return b + (with_sign ? 1.0 : 0.0);
}

DimensionEntropy KeySpace::dimension(const std::string& name, int64_t size, bool scaled,
                                     bool with_sign) const {
  return dimension(name, size, scaled, with_sign, params_.distribution);
}

DimensionEntropy KeySpace::dimension(const std::string& name, int64_t size, bool scaled,
                                     bool with_sign, ScaleDistribution distribution) const {
  DimensionEntropy d;
  d.name = name;
  d.size = size;
  d.permutation_bits = log2_factorial(size);
  d.scale_bits =
      scaled ? static_cast<double>(size) * scale_bits_per_entry(with_sign, distribution) : 0.0;
  return d;
}

namespace {
std::string dims_string(std::initializer_list<int64_t> dims) {
  std::string s = "[";
  bool first = true;
  for (int64_t d : dims) {
    if (!first) s.push_back('x');
    first = false;
    s.append(std::to_string(d));
  }
  s.push_back(']');
  return s;
}
}  // namespace

OperationKeySpace KeySpace::matmul(int64_t m, int64_t k, int64_t n) const {
  return matmul(m, k, n, params_.distribution);
}

OperationKeySpace KeySpace::matmul(int64_t m, int64_t k, int64_t n,
                                   ScaleDistribution operand_scales) const {
  const bool sign = params_.signed_inner_scale;
  const DimensionEntropy rows = dimension("rows", m, true, false, operand_scales);
  const DimensionEntropy inner = dimension("inner", k, true, sign, operand_scales);
  const DimensionEntropy cols = dimension("cols", n, true, false);
  OperationKeySpace op;
  op.operation = "matmul " + dims_string({m, k}) + "x" + dims_string({k, n});
  op.forward_key_bits = rows.bits() + inner.bits() + cols.bits();
  op.tensors = {{"X'", {rows, inner}},
                {"W'", {inner, cols}},
                {"dY'1", {dimension("rows (fresh)", m, true, false), cols}},
                {"dY'2", {rows, dimension("cols (fresh)", n, true, false)}}};
  return op;
}

OperationKeySpace KeySpace::batched_matmul(int64_t batch, int64_t m, int64_t k, int64_t n) const {
  const bool sign = params_.signed_inner_scale;
  const DimensionEntropy b = dimension("batch", batch, false, false);
  const double per_m = dimension("rows", m, true, false).bits();
  const double per_k = dimension("inner", k, true, sign).bits();
  const double per_n = dimension("cols", n, true, false).bits();
  // Every entry has its own key; fold the entries into one "entries" dimension per operand.
  auto entries = [&](const char* name, double bits_per_entry) {
    DimensionEntropy d;
    d.name = name;
    d.size = batch;
    d.permutation_bits = bits_per_entry * static_cast<double>(batch);
    return d;
  };
  OperationKeySpace op;
  op.operation = "batched_matmul " + std::to_string(batch) + "x" + dims_string({m, k}) + "x" +
                 dims_string({k, n});
  op.forward_key_bits = b.bits() + static_cast<double>(batch) * (per_m + per_k + per_n);
  op.tensors = {{"A'", {b, entries("entry keys (rows, inner)", per_m + per_k)}},
                {"B'", {b, entries("entry keys (inner, cols)", per_k + per_n)}}};
  return op;
}

OperationKeySpace KeySpace::conv_channel(const ConvShape& s) const {
  const bool sign = params_.signed_inner_scale;
  const DimensionEntropy batch = dimension("batch", s.batch, true, false);
  const DimensionEntropy in = dimension("in_channels", s.in_channels, true, sign);
  const DimensionEntropy out = dimension("out_channels", s.out_channels, true, false);
  OperationKeySpace op;
  op.operation = "conv_channel " + dims_string({s.batch, s.in_channels, s.height, s.width}) + "*" +
                 dims_string({s.out_channels, s.in_channels, s.kh, s.kw});
  op.forward_key_bits = batch.bits() + in.bits() + out.bits();
  op.tensors = {{"X'", {batch, in}},
                {"W'", {out, in}},
                {"dY'1", {dimension("batch (fresh)", s.batch, true, false), out}},
                {"dY'2", {batch, dimension("out_channels (fresh)", s.out_channels, true, false)}}};
  return op;
}

OperationKeySpace KeySpace::patch_conv(const ConvShape& s) const {
  OperationKeySpace op =
      matmul(s.positions(), s.patch(), s.out_channels, params_.patch_distribution);
  op.operation = "conv_patch " + dims_string({s.batch, s.in_channels, s.height, s.width}) + "*" +
                 dims_string({s.out_channels, s.in_channels, s.kh, s.kw}) + " as " +
                 dims_string({s.positions(), s.patch()}) + "x" +
                 dims_string({s.patch(), s.out_channels});
  return op;
}

}  // namespace tempo::crypto
