// The pure-TEE compute: every product runs here on the CPU (OpenBLAS, oneDNN).
#pragma once

#include "master/nn/compute.h"

namespace tempo::nn {

class PlainCompute final : public Compute {
 public:
  const char* name() const override { return "plain"; }
  Tensor matmul(const Tensor& x, const Tensor& w, std::unique_ptr<SavedProduct>* saved) override;
  void matmul_backward(const Tensor& dy, std::unique_ptr<SavedProduct>* saved, Tensor* dx,
                       Tensor* dw) override;
  Tensor conv2d(const Tensor& x, const Tensor& w, const ConvGeometry& g,
                std::unique_ptr<SavedProduct>* saved) override;
  void conv2d_backward(const Tensor& dy, std::unique_ptr<SavedProduct>* saved, Tensor* dx,
                       Tensor* dw) override;
  Tensor batched_matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) override;
};

}  // namespace tempo::nn
