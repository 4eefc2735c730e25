// Untrusted side: the compute backend interface. It computes on blinded tensors only.
#pragma once

#include <memory>
#include <string>

#include "common/blinded_tensor.h"
#include "common/worker_protocol.h"

namespace tempo::worker {

/// A device that runs the blinded products (CPU now; CUDA later), in the spirit of ggml backends.
/// Inputs are validated by the Worker before they reach a backend.
class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;    ///< "cpu", "cuda:0"
  virtual std::string device() const = 0;  ///< human-readable

  virtual BlindedTensor matmul(const BlindedTensor& a, const BlindedTensor& b, bool trans_a,
                               bool trans_b) = 0;
  virtual BlindedTensor batched_matmul(const BlindedTensor& a, const BlindedTensor& b,
                                       bool trans_a, bool trans_b) = 0;
  virtual BlindedTensor conv_forward(const BlindedTensor& x, const BlindedTensor& w,
                                     const protocol::ConvParams& p) = 0;
  virtual BlindedTensor conv_backward_data(const BlindedTensor& dy, const BlindedTensor& w,
                                           const protocol::ConvParams& p, const Shape& x_shape) = 0;
  virtual BlindedTensor conv_backward_weights(const BlindedTensor& x, const BlindedTensor& dy,
                                              const protocol::ConvParams& p,
                                              const Shape& w_shape) = 0;
};

/// Creates a backend by name ("cpu"). Throws std::invalid_argument for an unknown name.
std::unique_ptr<Backend> make_backend(const std::string& name, int threads = 0);

}  // namespace tempo::worker
