// The Compute of one offloaded layer: its products go to a worker, blinded.
#pragma once

#include <string>

#include "master/nn/compute.h"
#include "master/offload/offload_policy.h"

namespace tempo::offload {

class OffloadEngine;

/// nn::Compute for one layer (so traffic is accounted per layer and the conv mode is per layer).
class TempoCompute final : public nn::Compute {
 public:
  TempoCompute(OffloadEngine& engine, std::string layer, ConvMode conv_mode)
      : engine_(engine), layer_(std::move(layer)), conv_mode_(conv_mode) {}
  const char* name() const override { return "tempo"; }

  Tensor matmul(const Tensor& x, const Tensor& w,
                std::unique_ptr<nn::SavedProduct>* saved) override;
  void matmul_backward(const Tensor& dy, std::unique_ptr<nn::SavedProduct>* saved, Tensor* dx,
                       Tensor* dw) override;
  Tensor conv2d(const Tensor& x, const Tensor& w, const nn::ConvGeometry& g,
                std::unique_ptr<nn::SavedProduct>* saved) override;
  void conv2d_backward(const Tensor& dy, std::unique_ptr<nn::SavedProduct>* saved, Tensor* dx,
                       Tensor* dw) override;
  Tensor batched_matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) override;
  Tensor batched_matmul_forward(const Tensor& a, const Tensor& b, bool trans_b,
                                std::unique_ptr<nn::SavedProduct>* saved) override;
  void batched_matmul_backward(const Tensor& dc, std::unique_ptr<nn::SavedProduct>* saved,
                               Tensor* da, Tensor* db) override;

 private:
  Tensor patch_conv2d(const Tensor& x, const Tensor& w, const nn::ConvGeometry& g,
                      std::unique_ptr<nn::SavedProduct>* saved);
  Tensor channel_conv2d(const Tensor& x, const Tensor& w, const nn::ConvGeometry& g,
                        std::unique_ptr<nn::SavedProduct>* saved);

  OffloadEngine& engine_;
  std::string layer_;
  ConvMode conv_mode_;
};

}  // namespace tempo::offload
