// PlainCompute's convolution: checks shapes, then runs the faster backend for the geometry.
#include <stdexcept>
#include <string>

#include "master/nn/plain_compute.h"
#include "master/nn/plain_conv_backend.h"

namespace tempo::nn {

const char* conv_backend_name(ConvBackend b) {
  return b == ConvBackend::kOnednn ? "onednn" : "im2col";
}

ConvBackend preferred_conv_backend(const Shape& x, const Shape& /*w*/, const ConvGeometry& /*g*/) {
  // Measured (docs/notes/conv-backend.md): oneDNN's blocked kernels are 2-3x faster than
  // im2col+GEMM once there are enough channels to fill a 16-wide block, but the NCHW <-> blocked
  // reorders at the edges cost more than they save on large activations (more than 32K values
  // per image, e.g. 64x32x32) and the first layer (3 channels) is faster with im2col.
  const int64_t channels = x[1], per_image = x[1] * x[2] * x[3];
  return channels >= 16 && per_image <= 32768 ? ConvBackend::kOnednn : ConvBackend::kIm2col;
}

Tensor plain_conv2d(ConvBackend backend, const Tensor& x, const Tensor& w, const ConvGeometry& g,
                    std::unique_ptr<SavedProduct>* saved) {
  if (x.rank() != 4 || w.rank() != 4 || x.dim(1) != w.dim(1))
    throw std::invalid_argument("conv2d: input " + x.shape().to_string() + " and weight " +
                                w.shape().to_string() + " do not match");
  if (g.stride_h <= 0 || g.stride_w <= 0 || g.pad_h < 0 || g.pad_w < 0 ||
      x.dim(2) + 2 * g.pad_h < w.dim(2) || x.dim(3) + 2 * g.pad_w < w.dim(3) || w.dim(2) <= 0 ||
      w.dim(3) <= 0)
    throw std::invalid_argument("conv2d: geometry (stride " + std::to_string(g.stride_h) + "x" +
                                std::to_string(g.stride_w) + ", padding " +
                                std::to_string(g.pad_h) + "x" + std::to_string(g.pad_w) +
                                ") does not fit input " + x.shape().to_string() + " and weight " +
                                w.shape().to_string());
  return backend == ConvBackend::kOnednn ? detail::onednn_conv2d(x, w, g, saved)
                                         : detail::im2col_conv2d(x, w, g, saved);
}

void plain_conv2d_backward(const Tensor& dy, std::unique_ptr<SavedProduct>* saved, Tensor* dx,
                           Tensor* dw) {
  auto* s = saved ? dynamic_cast<detail::SavedPlainConv*>(saved->get()) : nullptr;
  if (!s) throw std::logic_error("conv2d_backward without a saved forward");
  // Release the saved operands whatever happens.
  std::unique_ptr<SavedProduct> owned = std::move(*saved);
  const Tensor& x = s->x;
  const Tensor& w = s->w;
  dy.expect_shape(
      {x.dim(0), w.dim(0), s->g.out_h(x.dim(2), w.dim(2)), s->g.out_w(x.dim(3), w.dim(3))},
      "conv2d_backward dY");
  if (s->backend == ConvBackend::kOnednn)
    detail::onednn_conv2d_backward(dy, *s, dx, dw);
  else
    detail::im2col_conv2d_backward(dy, *s, dx, dw);
}

Tensor PlainCompute::conv2d(const Tensor& x, const Tensor& w, const ConvGeometry& g,
                            std::unique_ptr<SavedProduct>* saved) {
  if (x.rank() != 4 || w.rank() != 4)
    throw std::invalid_argument("conv2d: input " + x.shape().to_string() + " and weight " +
                                w.shape().to_string() + " must be rank 4");
  return plain_conv2d(preferred_conv_backend(x.shape(), w.shape(), g), x, w, g, saved);
}

void PlainCompute::conv2d_backward(const Tensor& dy, std::unique_ptr<SavedProduct>* saved,
                                   Tensor* dx, Tensor* dw) {
  plain_conv2d_backward(dy, saved, dx, dw);
}

}  // namespace tempo::nn
