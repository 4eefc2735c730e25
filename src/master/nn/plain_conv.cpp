// Plain conv2d: im2col + GEMM per image, parallel over images.
#include <omp.h>

#include <stdexcept>

#include "master/core/blas.h"
#include "master/nn/im2col.h"
#include "master/nn/plain_compute.h"

namespace tempo::nn {

namespace {
struct SavedConv final : SavedProduct {
  Tensor x, w;
  ConvGeometry g;
};
}  // namespace

Tensor PlainCompute::conv2d(const Tensor& x, const Tensor& w, const ConvGeometry& g,
                            std::unique_ptr<SavedProduct>* saved) {
  if (x.rank() != 4 || w.rank() != 4 || x.dim(1) != w.dim(1))
    throw std::invalid_argument("conv2d: input " + x.shape().to_string() + " and weight " +
                                w.shape().to_string() + " do not match");
  const int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), wd = x.dim(3);
  const int64_t o = w.dim(0), kh = w.dim(2), kw = w.dim(3);
  const int64_t oh = g.out_h(h, kh), ow = g.out_w(wd, kw);
  const int64_t ck = c * kh * kw, plane = oh * ow;
  Tensor y({n, o, oh, ow});
  Tensor cols({static_cast<int64_t>(omp_get_max_threads()), ck * plane});
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < n; ++b) {
    float* col = cols.data() + omp_get_thread_num() * ck * plane;
    im2col(x.data() + b * c * h * wd, c, h, wd, kh, kw, g, col);
    blas::gemm(false, false, o, plane, ck, 1.0f, w.data(), col, 0.0f, y.data() + b * o * plane);
  }
  if (saved) {
    auto s = std::make_unique<SavedConv>();
    s->x = x;
    s->w = w;
    s->g = g;
    *saved = std::move(s);
  }
  return y;
}

void PlainCompute::conv2d_backward(const Tensor& dy, std::unique_ptr<SavedProduct>* saved,
                                   Tensor* dx, Tensor* dw) {
  auto* s = saved ? dynamic_cast<SavedConv*>(saved->get()) : nullptr;
  if (!s) throw std::logic_error("conv2d_backward without a saved forward");
  const Tensor& x = s->x;
  const Tensor& w = s->w;
  const int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), wd = x.dim(3);
  const int64_t o = w.dim(0), kh = w.dim(2), kw = w.dim(3);
  const int64_t oh = s->g.out_h(h, kh), ow = s->g.out_w(wd, kw);
  const int64_t ck = c * kh * kw, plane = oh * ow;
  dy.expect_shape({n, o, oh, ow}, "conv2d_backward dY");
  const int threads = omp_get_max_threads();
  Tensor cols({static_cast<int64_t>(threads), ck * plane});
  Tensor dw_partial;
  if (dw) dw_partial = Tensor::zeros({static_cast<int64_t>(threads), o * ck});
  if (dx) *dx = Tensor::zeros(x.shape());
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < n; ++b) {
    const int t = omp_get_thread_num();
    float* col = cols.data() + t * ck * plane;
    const float* dyb = dy.data() + b * o * plane;
    if (dw) {
      im2col(x.data() + b * c * h * wd, c, h, wd, kh, kw, s->g, col);
      blas::gemm(false, true, o, ck, plane, 1.0f, dyb, col, 1.0f, dw_partial.data() + t * o * ck);
    }
    if (dx) {
      blas::gemm(true, false, ck, plane, o, 1.0f, w.data(), dyb, 0.0f, col);
      col2im(col, c, h, wd, kh, kw, s->g, dx->data() + b * c * h * wd);
    }
  }
  if (dw) {
    *dw = Tensor::zeros(w.shape());
    for (int t = 0; t < threads; ++t)
      for (int64_t i = 0; i < o * ck; ++i) (*dw)[i] += dw_partial[t * o * ck + i];
  }
  saved->reset();
}

}  // namespace tempo::nn
