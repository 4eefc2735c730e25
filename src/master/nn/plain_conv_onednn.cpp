// Plain conv2d on oneDNN: primitives in the layouts oneDNN prefers (format_tag::any), with
// reorders from/to the engine's NCHW/OIHW at the edges, cached per geometry.
#include <omp.h>

#include <dnnl.hpp>
#include <map>
#include <mutex>
#include <tuple>

#include "master/nn/plain_conv_backend.h"

namespace tempo::nn::detail {

namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

/// Everything oneDNN needs for one convolution geometry (forward and both backwards).
struct ConvPrimitives {
  memory::desc src_user, wei_user, dst_user;  // NCHW / OIHW, the engine's layouts
  dnnl::convolution_forward::primitive_desc fwd_pd;
  dnnl::convolution_backward_data::primitive_desc bwd_data_pd;
  dnnl::convolution_backward_weights::primitive_desc bwd_weights_pd;
  dnnl::convolution_forward fwd;
  dnnl::convolution_backward_data bwd_data;
  dnnl::convolution_backward_weights bwd_weights;
};

// N, C, H, W, O, kh, kw, stride_h, stride_w, pad_h, pad_w, threads (oneDNN kernels are
// specialised for the thread count they were created for).
using ConvKey = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                           int64_t, int64_t, int64_t, int>;

std::shared_ptr<const ConvPrimitives> make_primitives(const ConvKey& k) {
  const auto [n, c, h, w, o, kh, kw, sh, sw, ph, pw, threads] = k;
  (void)threads;
  const ConvGeometry g{sh, sw, ph, pw};
  const memory::dims src{n, c, h, w}, wei{o, c, kh, kw}, dst{n, o, g.out_h(h, kh), g.out_w(w, kw)};
  const memory::dims strides{sh, sw}, pad{ph, pw};
  // Right padding equal to the left one: oneDNN checks (H + pl + pr - kh) / s + 1 == H' with
  // floor division, which is PyTorch's output size; rows it would never read are simply unused.
  auto& eng = cpu_engine();
  auto p = std::make_shared<ConvPrimitives>();
  p->src_user = memory::desc(src, dt::f32, tag::nchw);
  p->wei_user = memory::desc(wei, dt::f32, tag::oihw);
  p->dst_user = memory::desc(dst, dt::f32, tag::nchw);
  const memory::desc src_any(src, dt::f32, tag::any), wei_any(wei, dt::f32, tag::any),
      dst_any(dst, dt::f32, tag::any);
  p->fwd_pd = dnnl::convolution_forward::primitive_desc(
      dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training,
                                      dnnl::algorithm::convolution_direct, src_any, wei_any,
                                      dst_any, strides, pad, pad),
      eng);
  p->bwd_data_pd = dnnl::convolution_backward_data::primitive_desc(
      dnnl::convolution_backward_data::desc(dnnl::algorithm::convolution_direct, src_any, wei_any,
                                            dst_any, strides, pad, pad),
      eng, p->fwd_pd);
  p->bwd_weights_pd = dnnl::convolution_backward_weights::primitive_desc(
      dnnl::convolution_backward_weights::desc(dnnl::algorithm::convolution_direct, src_any,
                                               wei_any, dst_any, strides, pad, pad),
      eng, p->fwd_pd);
  p->fwd = dnnl::convolution_forward(p->fwd_pd);
  p->bwd_data = dnnl::convolution_backward_data(p->bwd_data_pd);
  p->bwd_weights = dnnl::convolution_backward_weights(p->bwd_weights_pd);
  return p;
}

/// Primitives for this geometry, created once. Few geometries exist per model (about 12 for a
/// ResNet, twice with a smaller last batch), so the map is cleared if it ever grows past a bound.
std::shared_ptr<const ConvPrimitives> primitives_for(const Shape& x, const Shape& w,
                                                     const ConvGeometry& g) {
  static std::mutex mutex;
  static std::map<ConvKey, std::shared_ptr<const ConvPrimitives>> cache;
  const ConvKey key{x[0], x[1],       x[2],       x[3],    w[0],    w[2],
                    w[3], g.stride_h, g.stride_w, g.pad_h, g.pad_w, omp_get_max_threads()};
  std::lock_guard<std::mutex> lock(mutex);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  if (cache.size() >= 256) cache.clear();
  return cache.emplace(key, make_primitives(key)).first->second;
}

memory wrap(const memory::desc& md, const float* data) {
  // oneDNN takes non-const handles; inputs are only read.
  return memory(md, cpu_engine(), const_cast<float*>(data));
}

/// `m` in layout `want`: itself if it already is, else a reordered copy.
memory in_layout(const memory& m, const memory::desc& want, dnnl::stream& stream) {
  if (m.get_desc() == want) return m;
  memory out(want, cpu_engine());
  dnnl::reorder(m, out).execute(stream, {{DNNL_ARG_FROM, m}, {DNNL_ARG_TO, out}});
  return out;
}

/// Runs `run` so that its output lands in `user` (NCHW/OIHW): directly when the primitive's
/// layout is the user's, else through a temporary and a reorder.
template <typename Run>
void into_user(const memory::desc& produced, const memory& user, dnnl::stream& stream, Run run) {
  if (produced == user.get_desc()) {
    run(user);
    return;
  }
  memory tmp(produced, cpu_engine());
  run(tmp);
  dnnl::reorder(tmp, user).execute(stream, {{DNNL_ARG_FROM, tmp}, {DNNL_ARG_TO, user}});
}

struct SavedOnednnConv final : SavedPlainConv {
  std::shared_ptr<const ConvPrimitives> prims;
  memory src, wei;  // operands in the forward primitive's layouts
};

}  // namespace

Tensor onednn_conv2d(const Tensor& x, const Tensor& w, const ConvGeometry& g,
                     std::unique_ptr<SavedProduct>* saved) {
  auto p = primitives_for(x.shape(), w.shape(), g);
  dnnl::stream stream(cpu_engine());
  Tensor y({x.dim(0), w.dim(0), g.out_h(x.dim(2), w.dim(2)), g.out_w(x.dim(3), w.dim(3))});
  memory src = in_layout(wrap(p->src_user, x.data()), p->fwd_pd.src_desc(), stream);
  memory wei = in_layout(wrap(p->wei_user, w.data()), p->fwd_pd.weights_desc(), stream);
  into_user(p->fwd_pd.dst_desc(), wrap(p->dst_user, y.data()), stream, [&](const memory& dst) {
    p->fwd.execute(stream, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DST, dst}});
  });
  stream.wait();
  if (saved) {
    auto s = std::make_unique<SavedOnednnConv>();
    s->backend = ConvBackend::kOnednn;
    s->x = x;
    s->w = w;
    s->g = g;
    s->prims = std::move(p);
    s->src = src;
    s->wei = wei;
    *saved = std::move(s);
  }
  return y;
}

void onednn_conv2d_backward(const Tensor& dy, SavedPlainConv& base, Tensor* dx, Tensor* dw) {
  auto& s = static_cast<SavedOnednnConv&>(base);
  const ConvPrimitives& p = *s.prims;
  dnnl::stream stream(cpu_engine());
  const memory dy_user = wrap(p.dst_user, dy.data());
  // diff_dst is reordered once when both backward primitives want the same layout.
  memory diff_dst_data, diff_dst_weights;
  if (dx) diff_dst_data = in_layout(dy_user, p.bwd_data_pd.diff_dst_desc(), stream);
  if (dw) {
    diff_dst_weights = dx && p.bwd_weights_pd.diff_dst_desc() == diff_dst_data.get_desc()
                           ? diff_dst_data
                           : in_layout(dy_user, p.bwd_weights_pd.diff_dst_desc(), stream);
  }
  if (dx) {
    memory wei =
        p.bwd_data_pd.weights_desc() == s.wei.get_desc()
            ? s.wei
            : in_layout(wrap(p.wei_user, s.w.data()), p.bwd_data_pd.weights_desc(), stream);
    *dx = Tensor(s.x.shape());
    into_user(p.bwd_data_pd.diff_src_desc(), wrap(p.src_user, dx->data()), stream,
              [&](const memory& diff_src) {
                p.bwd_data.execute(stream, {{DNNL_ARG_DIFF_DST, diff_dst_data},
                                            {DNNL_ARG_WEIGHTS, wei},
                                            {DNNL_ARG_DIFF_SRC, diff_src}});
              });
  }
  if (dw) {
    memory src = p.bwd_weights_pd.src_desc() == s.src.get_desc()
                     ? s.src
                     : in_layout(wrap(p.src_user, s.x.data()), p.bwd_weights_pd.src_desc(), stream);
    *dw = Tensor(s.w.shape());
    into_user(p.bwd_weights_pd.diff_weights_desc(), wrap(p.wei_user, dw->data()), stream,
              [&](const memory& diff_wei) {
                p.bwd_weights.execute(stream, {{DNNL_ARG_DIFF_DST, diff_dst_weights},
                                               {DNNL_ARG_SRC, src},
                                               {DNNL_ARG_DIFF_WEIGHTS, diff_wei}});
              });
  }
  stream.wait();
}

}  // namespace tempo::nn::detail
