// The CPU compute backend: oneDNN products and convolutions on blinded tensors.
#pragma once

#include <memory>
#include <string>

#include "worker/backend.h"
#include "worker/dnnl_conv.h"

namespace tempo::worker {

/// Runs the blinded products on the CPU: matrix products through oneDNN (dnnl_sgemm),
/// convolutions through oneDNN with primitives cached per shape (DnnlConv).
/// `threads` <= 0 uses omp_get_max_threads() of the calling thread.
class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(int threads = 0);

  std::string name() const override { return "cpu"; }
  std::string device() const override { return device_; }

  BlindedTensor matmul(const BlindedTensor& a, const BlindedTensor& b, bool trans_a,
                       bool trans_b) override;
  BlindedTensor batched_matmul(const BlindedTensor& a, const BlindedTensor& b, bool trans_a,
                               bool trans_b) override;
  BlindedTensor conv_forward(const BlindedTensor& x, const BlindedTensor& w,
                             const protocol::ConvParams& p) override;
  BlindedTensor conv_backward_data(const BlindedTensor& dy, const BlindedTensor& w,
                                   const protocol::ConvParams& p, const Shape& x_shape) override;
  BlindedTensor conv_backward_weights(const BlindedTensor& x, const BlindedTensor& dy,
                                      const protocol::ConvParams& p, const Shape& w_shape) override;

 private:
  int threads_;
  std::string device_;
  DnnlConv conv_;
};

}  // namespace tempo::worker
