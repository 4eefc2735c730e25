#include "worker/op_shapes.h"

namespace tempo::worker {

namespace {

using protocol::Op;

std::string operand_name(Op op, char which) {
  return std::string("operand ") + which + " (" + operand_role(op, which) + ")";
}

std::string hw(int64_t h, int64_t w) { return std::to_string(h) + "x" + std::to_string(w); }

std::string expect_rank(Op op, char which, const Shape& s, int rank, const char* layout) {
  if (s.rank() == rank) return "";
  return std::string(protocol::op_name(op)) + ": " + operand_name(op, which) + " must have rank " +
         std::to_string(rank) + " (" + layout + "), got rank " + std::to_string(s.rank()) + " " +
         s.to_string();
}

/// An optional out_shape of a forward op must equal the result.
std::string check_optional_out_shape(const protocol::Request& r, const Shape& result) {
  if (r.out_shape.rank() == 0 || r.out_shape == result) return "";
  return std::string(protocol::op_name(r.op)) + ": out_shape " + r.out_shape.to_string() +
         " does not match the result shape " + result.to_string();
}

std::string check_no_transpose(const protocol::Request& r) {
  if (!r.trans_a && !r.trans_b) return "";
  return std::string(protocol::op_name(r.op)) + ": trans_a/trans_b must be false for a conv op";
}

/// stride >= 1, 0 <= padding <= kMaxDim (so no geometry arithmetic can overflow).
std::string check_conv_params(Op op, const protocol::ConvParams& p) {
  const std::string name = protocol::op_name(op);
  if (p.stride_h < 1 || p.stride_w < 1)
    return name + ": stride must be >= 1, got stride_h=" + std::to_string(p.stride_h) +
           ", stride_w=" + std::to_string(p.stride_w);
  if (p.stride_h > kMaxDim || p.stride_w > kMaxDim)
    return name + ": stride " + hw(p.stride_h, p.stride_w) + " is too large";
  if (p.pad_h < 0 || p.pad_w < 0)
    return name + ": padding must be >= 0, got pad_h=" + std::to_string(p.pad_h) +
           ", pad_w=" + std::to_string(p.pad_w);
  if (p.pad_h > kMaxDim || p.pad_w > kMaxDim)
    return name + ": padding " + hw(p.pad_h, p.pad_w) + " is too large";
  return "";
}

/// Output size of the conv of an x-shaped input with a w-shaped kernel, or an error if the
/// kernel does not fit the padded input. Params and dims are already bounded (no overflow).
std::string conv_output(Op op, const Shape& x, const Shape& w, const protocol::ConvParams& p,
                        int64_t* oh, int64_t* ow) {
  const int64_t ph = x[2] + 2 * p.pad_h, pw = x[3] + 2 * p.pad_w;
  if (w[2] > ph || w[3] > pw)
    return std::string(protocol::op_name(op)) + ": kernel " + hw(w[2], w[3]) +
           " does not fit the input " + hw(x[2], x[3]) + " padded by " + hw(p.pad_h, p.pad_w);
  *oh = (ph - w[2]) / p.stride_h + 1;
  *ow = (pw - w[3]) / p.stride_w + 1;
  return "";
}

std::string geometry(const Shape& w, const protocol::ConvParams& p) {
  return "kernel " + hw(w[2], w[3]) + ", stride " + hw(p.stride_h, p.stride_w) + ", padding " +
         hw(p.pad_h, p.pad_w);
}

std::string check_matmul(const protocol::Request& r, const Shape& a, const Shape& b,
                         Shape* result) {
  const bool batched = r.op == Op::kBatchedMatMul;
  const int rank = batched ? 3 : 2;
  const char* layout = batched ? "batch, rows, cols" : "rows, cols";
  if (auto e = expect_rank(r.op, 'a', a, rank, layout); !e.empty()) return e;
  if (auto e = expect_rank(r.op, 'b', b, rank, layout); !e.empty()) return e;
  const std::string name = protocol::op_name(r.op);
  const int o = batched ? 1 : 0;  // first matrix dimension
  if (batched && a[0] != b[0])
    return name + ": batch dimensions differ: operand a (A) has " + std::to_string(a[0]) +
           ", operand b (B) has " + std::to_string(b[0]);
  const int64_t m = r.trans_a ? a[o + 1] : a[o], ka = r.trans_a ? a[o] : a[o + 1];
  const int64_t kb = r.trans_b ? b[o + 1] : b[o], n = r.trans_b ? b[o] : b[o + 1];
  if (ka != kb)
    return name + ": inner dimensions do not match: op(a) is " + hw(m, ka) + " and op(b) is " +
           hw(kb, n) + " (a " + a.to_string() + ", trans_a=" + (r.trans_a ? "true" : "false") +
           "; b " + b.to_string() + ", trans_b=" + (r.trans_b ? "true" : "false") + ")";
  *result = batched ? Shape{a[0], m, n} : Shape{m, n};
  return check_optional_out_shape(r, *result);
}

std::string check_conv_forward(const protocol::Request& r, const Shape& x, const Shape& w,
                               Shape* result) {
  if (auto e = expect_rank(r.op, 'a', x, 4, "N, C, H, W"); !e.empty()) return e;
  if (auto e = expect_rank(r.op, 'b', w, 4, "O, C, kh, kw"); !e.empty()) return e;
  if (auto e = check_no_transpose(r); !e.empty()) return e;
  if (auto e = check_conv_params(r.op, r.conv); !e.empty()) return e;
  if (x[1] != w[1])
    return std::string("conv_forward: channel counts differ: operand a (X) has C=") +
           std::to_string(x[1]) + ", operand b (W) has C=" + std::to_string(w[1]);
  int64_t oh = 0, ow = 0;
  if (auto e = conv_output(r.op, x, w, r.conv, &oh, &ow); !e.empty()) return e;
  *result = Shape{x[0], w[0], oh, ow};
  return check_optional_out_shape(r, *result);
}

std::string check_out_shape_given(const protocol::Request& r, const char* what,
                                  const char* layout) {
  if (r.out_shape.rank() == 4) return "";
  return std::string(protocol::op_name(r.op)) + ": out_shape must be the rank-4 shape of " + what +
         " (" + layout + "), got " + r.out_shape.to_string();
}

std::string check_conv_backward_data(const protocol::Request& r, const Shape& dy, const Shape& w,
                                     Shape* result) {
  if (auto e = expect_rank(r.op, 'a', dy, 4, "N, O, H', W'"); !e.empty()) return e;
  if (auto e = expect_rank(r.op, 'b', w, 4, "O, C, kh, kw"); !e.empty()) return e;
  if (auto e = check_no_transpose(r); !e.empty()) return e;
  if (auto e = check_conv_params(r.op, r.conv); !e.empty()) return e;
  if (auto e = check_out_shape_given(r, "dX", "N, C, H, W"); !e.empty()) return e;
  const Shape& x = r.out_shape;
  int64_t x_bytes = 0;
  if (auto e = check_dims(x, "conv_backward_data: out_shape (dX)", &x_bytes); !e.empty()) return e;
  if (dy[1] != w[0])
    return "conv_backward_data: operand a (dY) has " + std::to_string(dy[1]) +
           " channels but operand b (W) has O=" + std::to_string(w[0]) + " filters";
  if (x[0] != dy[0])
    return "conv_backward_data: out_shape (dX) " + x.to_string() + " has batch " +
           std::to_string(x[0]) + " but operand a (dY) has batch " + std::to_string(dy[0]);
  if (x[1] != w[1])
    return "conv_backward_data: out_shape (dX) " + x.to_string() +
           " has C=" + std::to_string(x[1]) + " but operand b (W) has C=" + std::to_string(w[1]);
  int64_t oh = 0, ow = 0;
  if (auto e = conv_output(r.op, x, w, r.conv, &oh, &ow); !e.empty()) return e;
  if (oh != dy[2] || ow != dy[3])
    return "conv_backward_data: operand a (dY) is " + hw(dy[2], dy[3]) +
           " spatially, but out_shape (dX) " + x.to_string() + " with " + geometry(w, r.conv) +
           " gives " + hw(oh, ow);
  *result = x;
  return "";
}

std::string check_conv_backward_weights(const protocol::Request& r, const Shape& x, const Shape& dy,
                                        Shape* result) {
  if (auto e = expect_rank(r.op, 'a', x, 4, "N, C, H, W"); !e.empty()) return e;
  if (auto e = expect_rank(r.op, 'b', dy, 4, "N, O, H', W'"); !e.empty()) return e;
  if (auto e = check_no_transpose(r); !e.empty()) return e;
  if (auto e = check_conv_params(r.op, r.conv); !e.empty()) return e;
  if (auto e = check_out_shape_given(r, "dW", "O, C, kh, kw"); !e.empty()) return e;
  const Shape& w = r.out_shape;
  int64_t w_bytes = 0;
  if (auto e = check_dims(w, "conv_backward_weights: out_shape (dW)", &w_bytes); !e.empty())
    return e;
  if (x[0] != dy[0])
    return "conv_backward_weights: batch sizes differ: operand a (X) has " + std::to_string(x[0]) +
           ", operand b (dY) has " + std::to_string(dy[0]);
  if (w[0] != dy[1])
    return "conv_backward_weights: out_shape (dW) " + w.to_string() +
           " has O=" + std::to_string(w[0]) + " but operand b (dY) has " + std::to_string(dy[1]) +
           " channels";
  if (w[1] != x[1])
    return "conv_backward_weights: out_shape (dW) " + w.to_string() +
           " has C=" + std::to_string(w[1]) + " but operand a (X) has C=" + std::to_string(x[1]);
  int64_t oh = 0, ow = 0;
  if (auto e = conv_output(r.op, x, w, r.conv, &oh, &ow); !e.empty()) return e;
  if (oh != dy[2] || ow != dy[3])
    return "conv_backward_weights: operand b (dY) is " + hw(dy[2], dy[3]) +
           " spatially, but operand a (X) " + x.to_string() + " with " + geometry(w, r.conv) +
           " gives " + hw(oh, ow);
  *result = w;
  return "";
}

}  // namespace

const char* operand_role(Op op, char which) {
  const bool a = which == 'a';
  switch (op) {
    case Op::kMatMul:
    case Op::kBatchedMatMul:
      return a ? "A" : "B";
    case Op::kConvForward:
      return a ? "X" : "W";
    case Op::kConvBackwardData:
      return a ? "dY" : "W";
    case Op::kConvBackwardWeights:
      return a ? "X" : "dY";
    case Op::kFree:
      break;
  }
  return "unused";
}

std::string check_dims(const Shape& s, const std::string& what, int64_t* bytes) {
  int64_t n = static_cast<int64_t>(sizeof(float));
  for (int i = 0; i < s.rank(); ++i) {
    const int64_t d = s[i];
    if (d < 1)
      return what + ": dimension " + std::to_string(i) + " of " + s.to_string() + " is " +
             std::to_string(d) + "; sizes must be positive";
    if (d > kMaxDim)
      return what + ": dimension " + std::to_string(i) + " of " + s.to_string() + " is " +
             std::to_string(d) + ", above the largest supported size " + std::to_string(kMaxDim);
    if (__builtin_mul_overflow(n, d, &n))
      return what + ": size of " + s.to_string() + " overflows a 64-bit byte count";
  }
  *bytes = n;
  return "";
}

std::string check_op_shapes(const protocol::Request& r, const Shape& a, const Shape& b,
                            Shape* result) {
  switch (r.op) {
    case Op::kMatMul:
    case Op::kBatchedMatMul:
      return check_matmul(r, a, b, result);
    case Op::kConvForward:
      return check_conv_forward(r, a, b, result);
    case Op::kConvBackwardData:
      return check_conv_backward_data(r, a, b, result);
    case Op::kConvBackwardWeights:
      return check_conv_backward_weights(r, a, b, result);
    case Op::kFree:
      break;
  }
  return std::string(protocol::op_name(r.op)) + ": not a compute op";
}

}  // namespace tempo::worker
