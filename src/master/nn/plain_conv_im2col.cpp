// Plain conv2d: im2col + GEMM per image, parallel over images.
#include <omp.h>

#include "master/core/blas.h"
#include "master/nn/im2col.h"
#include "master/nn/plain_conv_backend.h"

namespace tempo::nn::detail {

Tensor im2col_conv2d(const Tensor& x, const Tensor& w, const ConvGeometry& g,
                     std::unique_ptr<SavedProduct>* saved) {
  const int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), wd = x.dim(3);
  const int64_t o = w.dim(0), kh = w.dim(2), kw = w.dim(3);
  const int64_t oh = g.out_h(h, kh), ow = g.out_w(wd, kw);
  const int64_t ck = c * kh * kw, plane = oh * ow;
  Tensor y({n, o, oh, ow});
  // Tiny convolutions are not worth waking the thread team.
  const bool parallel = n * o * plane * ck > (int64_t{1} << 18);
  Tensor cols({static_cast<int64_t>(omp_get_max_threads()), ck * plane});
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t b = 0; b < n; ++b) {
    float* col = cols.data() + omp_get_thread_num() * ck * plane;
    im2col(x.data() + b * c * h * wd, c, h, wd, kh, kw, g, col);
    blas::gemm(false, false, o, plane, ck, 1.0f, w.data(), col, 0.0f, y.data() + b * o * plane);
  }
  if (saved) {
    auto s = std::make_unique<SavedPlainConv>();
    s->backend = ConvBackend::kIm2col;
    s->x = x;
    s->w = w;
    s->g = g;
    *saved = std::move(s);
  }
  return y;
}

void im2col_conv2d_backward(const Tensor& dy, SavedPlainConv& s, Tensor* dx, Tensor* dw) {
  const Tensor& x = s.x;
  const Tensor& w = s.w;
  const int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), wd = x.dim(3);
  const int64_t o = w.dim(0), kh = w.dim(2), kw = w.dim(3);
  const int64_t oh = s.g.out_h(h, kh), ow = s.g.out_w(wd, kw);
  const int64_t ck = c * kh * kw, plane = oh * ow;
  const int threads = omp_get_max_threads();
  Tensor cols({static_cast<int64_t>(threads), ck * plane});
  const bool parallel = n * o * plane * ck > (int64_t{1} << 18);
  Tensor dw_partial;
  if (dw) dw_partial = Tensor::zeros({static_cast<int64_t>(threads), o * ck});
  if (dx) *dx = Tensor::zeros(x.shape());
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t b = 0; b < n; ++b) {
    const int t = omp_get_thread_num();
    float* col = cols.data() + t * ck * plane;
    const float* dyb = dy.data() + b * o * plane;
    if (dw) {
      im2col(x.data() + b * c * h * wd, c, h, wd, kh, kw, s.g, col);
      blas::gemm(false, true, o, ck, plane, 1.0f, dyb, col, 1.0f, dw_partial.data() + t * o * ck);
    }
    if (dx) {
      blas::gemm(true, false, ck, plane, o, 1.0f, w.data(), dyb, 0.0f, col);
      col2im(col, c, h, wd, kh, kw, s.g, dx->data() + b * c * h * wd);
    }
  }
  if (dw) {
    *dw = Tensor::zeros(w.shape());
    for (int t = 0; t < threads; ++t)
      for (int64_t i = 0; i < o * ck; ++i) (*dw)[i] += dw_partial[t * o * ck + i];
  }
}

}  // namespace tempo::nn::detail
