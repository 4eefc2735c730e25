// The two implementations behind PlainCompute's convolution and the rule that picks one.
#pragma once

#include <memory>

#include "master/nn/compute.h"

namespace tempo::nn {

/// How a plain (in-TEE) convolution is computed.
enum class ConvBackend {
  kIm2col,  ///< im2col + OpenBLAS GEMM per image, parallel over images
  kOnednn,  ///< oneDNN primitives (blocked layouts, reorders at the edges), cached per shape
};

const char* conv_backend_name(ConvBackend b);

/// The faster backend for this convolution (measured in docs/notes/conv-backend.md).
ConvBackend preferred_conv_backend(const Shape& x, const Shape& w, const ConvGeometry& g);

/// Y = conv2d(X, W) with a chosen backend; same contract as Compute::conv2d (shapes are checked).
Tensor plain_conv2d(ConvBackend backend, const Tensor& x, const Tensor& w, const ConvGeometry& g,
                    std::unique_ptr<SavedProduct>* saved);
/// Backward of plain_conv2d, on whichever backend ran the forward; same contract as
/// Compute::conv2d_backward.
void plain_conv2d_backward(const Tensor& dy, std::unique_ptr<SavedProduct>* saved, Tensor* dx,
                           Tensor* dw);

namespace detail {

/// What every plain backend keeps from forward to backward.
struct SavedPlainConv : SavedProduct {
  ConvBackend backend = ConvBackend::kIm2col;
  Tensor x, w;
  ConvGeometry g;
};

Tensor im2col_conv2d(const Tensor& x, const Tensor& w, const ConvGeometry& g,
                     std::unique_ptr<SavedProduct>* saved);
void im2col_conv2d_backward(const Tensor& dy, SavedPlainConv& s, Tensor* dx, Tensor* dw);
Tensor onednn_conv2d(const Tensor& x, const Tensor& w, const ConvGeometry& g,
                     std::unique_ptr<SavedProduct>* saved);
void onednn_conv2d_backward(const Tensor& dy, SavedPlainConv& s, Tensor* dx, Tensor* dw);

}  // namespace detail
}  // namespace tempo::nn
