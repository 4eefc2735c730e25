#include "worker/dnnl_conv.h"

#include <dnnl.hpp>
#include <optional>
#include <unordered_map>

#include "common/aligned_buffer.h"

namespace tempo::worker {

namespace {

using dnnl::memory;
using tag = memory::format_tag;

memory::dims dims_of(const Shape& s) { return {s[0], s[1], s[2], s[3]}; }

memory::desc plain_desc(const Shape& s, tag t) {
  return memory::desc(dims_of(s), memory::data_type::f32, t);
}
// The primitive chooses its own (blocked) layouts, and we reorder around it. Measured on
// N=32, C=O=64, 32x32, 3x3, pad 1, one AVX-512 core, best of 8 (fwd / bwd-data / bwd-weights):
// blocked + reorders 13.8 / 14.8 / 15.1 ms; nchw/oihw forced on oneDNN 26.6 / 33.2 / 39.2 ms;
// im2col + OpenBLAS GEMM 60-80 ms each.
memory::desc any_desc(const Shape& s) {
  return memory::desc(dims_of(s), memory::data_type::f32, tag::any);
}

struct KeyHash {
  size_t operator()(const std::array<int64_t, 12>& k) const {
    size_t h = 1469598103934665603ull;
    for (int64_t v : k) h = (h ^ static_cast<size_t>(v)) * 1099511628211ull;
    return h;
  }
};

}  // namespace

/// One argument of a cached primitive: the caller's plain layout, the primitive's layout and,
/// when they differ, the reorder between them (user->primitive for inputs, back for the output).
struct DnnlConvArg {
  int arg = 0;
  memory::desc user_md, prim_md;
  std::optional<dnnl::reorder> reorder;
};

struct DnnlConv::Entry {
  dnnl::primitive prim;
  std::array<DnnlConvArg, 3> args;  // two inputs, then the output
};

struct DnnlConv::Impl {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  std::unordered_map<Key, Entry, KeyHash> cache;
  // Reordered copies of the three arguments, shared by all primitives (one call runs at a time),
  // so memory grows with the largest conv, not with the number of cached shapes.
  std::array<AlignedBuffer, 3> scratch;
};

namespace {

// Bound on cached primitives: a model has a few dozen conv shapes; a stream of distinct shapes
// (a hostile master) must not grow memory without limit.
constexpr size_t kMaxCachedPrimitives = 256;

DnnlConvArg make_arg(const dnnl::engine& eng, int arg, const memory::desc& user_md,
                     const memory::desc& prim_md, bool is_output) {
  DnnlConvArg a;
  a.arg = arg;
  a.user_md = user_md;
  a.prim_md = prim_md;
  if (prim_md != user_md)
    a.reorder = is_output
                    ? dnnl::reorder(dnnl::reorder::primitive_desc(eng, prim_md, eng, user_md))
                    : dnnl::reorder(dnnl::reorder::primitive_desc(eng, user_md, eng, prim_md));
  return a;
}

}  // namespace

DnnlConv::DnnlConv() : impl_(std::make_unique<Impl>()) {}
DnnlConv::~DnnlConv() = default;

size_t DnnlConv::cached_primitives() const { return impl_->cache.size(); }

DnnlConv::Entry& DnnlConv::entry(Direction d, const Shape& xs, const Shape& ws,
                                 const protocol::ConvParams& p) {
  const Key key{static_cast<int64_t>(d),
                xs[0],
                xs[1],
                xs[2],
                xs[3],
                ws[0],
                ws[2],
                ws[3],
                p.stride_h,
                p.stride_w,
                p.pad_h,
                p.pad_w};
  auto it = impl_->cache.find(key);
  if (it != impl_->cache.end()) return it->second;
  if (impl_->cache.size() >= kMaxCachedPrimitives) impl_->cache.clear();
  Entry e = build(d, xs, ws, p, /*plain=*/false);
  // A blocked layout pads channels up to the block (e.g. 3 -> 16): then the reorders and the
  // padded compute cost more than they save (5x slower backward-data with C=3).
  for (const DnnlConvArg& a : e.args)
    if (a.prim_md.get_size() * 2 > a.user_md.get_size() * 3) {
      e = build(d, xs, ws, p, /*plain=*/true);
      break;
    }
  return impl_->cache.emplace(key, std::move(e)).first->second;
}

DnnlConv::Entry DnnlConv::build(Direction d, const Shape& xs, const Shape& ws,
                                const protocol::ConvParams& p, bool plain) const {
  const int64_t oh = (xs[2] + 2 * p.pad_h - ws[2]) / p.stride_h + 1;
  const int64_t ow = (xs[3] + 2 * p.pad_w - ws[3]) / p.stride_w + 1;
  const Shape ys{xs[0], ws[0], oh, ow};
  const memory::dims strides{p.stride_h, p.stride_w}, pad{p.pad_h, p.pad_w};
  const dnnl::engine& eng = impl_->engine;

  const auto x_user = plain_desc(xs, tag::nchw), w_user = plain_desc(ws, tag::oihw),
             y_user = plain_desc(ys, tag::nchw);
  const auto x_any = plain ? x_user : any_desc(xs), w_any = plain ? w_user : any_desc(ws),
             y_any = plain ? y_user : any_desc(ys);
  dnnl::convolution_forward::primitive_desc fwd(
      dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training,
                                      dnnl::algorithm::convolution_direct, x_any, w_any, y_any,
                                      strides, pad, pad),
      eng);

  Entry e;
  switch (d) {
    case Direction::kForward:
      e.prim = dnnl::convolution_forward(fwd);
      e.args = {make_arg(eng, DNNL_ARG_SRC, x_user, fwd.src_desc(), false),
                make_arg(eng, DNNL_ARG_WEIGHTS, w_user, fwd.weights_desc(), false),
                make_arg(eng, DNNL_ARG_DST, y_user, fwd.dst_desc(), true)};
      break;
    case Direction::kBackwardData: {
      dnnl::convolution_backward_data::primitive_desc bwd(
          dnnl::convolution_backward_data::desc(dnnl::algorithm::convolution_direct, x_any, w_any,
                                                y_any, strides, pad, pad),
          eng, fwd);
      e.prim = dnnl::convolution_backward_data(bwd);
      e.args = {make_arg(eng, DNNL_ARG_DIFF_DST, y_user, bwd.diff_dst_desc(), false),
                make_arg(eng, DNNL_ARG_WEIGHTS, w_user, bwd.weights_desc(), false),
                make_arg(eng, DNNL_ARG_DIFF_SRC, x_user, bwd.diff_src_desc(), true)};
      break;
    }
    case Direction::kBackwardWeights: {
      dnnl::convolution_backward_weights::primitive_desc bwd(
          dnnl::convolution_backward_weights::desc(dnnl::algorithm::convolution_direct, x_any,
                                                   w_any, y_any, strides, pad, pad),
          eng, fwd);
      e.prim = dnnl::convolution_backward_weights(bwd);
      e.args = {make_arg(eng, DNNL_ARG_SRC, x_user, bwd.src_desc(), false),
                make_arg(eng, DNNL_ARG_DIFF_DST, y_user, bwd.diff_dst_desc(), false),
                make_arg(eng, DNNL_ARG_DIFF_WEIGHTS, w_user, bwd.diff_weights_desc(), true)};
      break;
    }
  }
  return e;
}

void DnnlConv::run(Entry& e, const float* in0, const float* in1, float* out) {
  dnnl::stream& s = impl_->stream;
  const dnnl::engine& eng = impl_->engine;
  std::unordered_map<int, memory> exec_args;
  float* ptrs[3] = {const_cast<float*>(in0), const_cast<float*>(in1), out};
  memory prim_out;
  for (int i = 0; i < 3; ++i) {
    const DnnlConvArg& a = e.args[static_cast<size_t>(i)];
    memory user(a.user_md, eng, ptrs[i]);
    if (!a.reorder) {
      exec_args.emplace(a.arg, user);
      continue;
    }
    AlignedBuffer& buf = impl_->scratch[static_cast<size_t>(i)];
    const int64_t floats = static_cast<int64_t>((a.prim_md.get_size() + 3) / 4);
    if (buf.size() < floats) buf = AlignedBuffer(floats);
    memory prim(a.prim_md, eng, buf.data());
    if (i < 2)
      a.reorder->execute(s, user, prim);
    else
      prim_out = prim;
    exec_args.emplace(a.arg, prim);
  }
  e.prim.execute(s, exec_args);
  if (e.args[2].reorder) {
    memory user_out(e.args[2].user_md, eng, out);
    e.args[2].reorder->execute(s, prim_out, user_out);
  }
  s.wait();
}

void DnnlConv::forward(const float* x, const Shape& x_shape, const float* w, const Shape& w_shape,
                       const protocol::ConvParams& p, float* y) {
  run(entry(Direction::kForward, x_shape, w_shape, p), x, w, y);
}

void DnnlConv::backward_data(const float* dy, const float* w, const Shape& w_shape,
                             const protocol::ConvParams& p, float* dx, const Shape& x_shape) {
  run(entry(Direction::kBackwardData, x_shape, w_shape, p), dy, w, dx);
}

void DnnlConv::backward_weights(const float* x, const Shape& x_shape, const float* dy,
                                const protocol::ConvParams& p, float* dw, const Shape& w_shape) {
  run(entry(Direction::kBackwardWeights, x_shape, w_shape, p), x, dy, dw);
}

}  // namespace tempo::worker
