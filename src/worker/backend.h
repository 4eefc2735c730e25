// Untrusted side: the compute backend interface. It computes on blinded tensors only.
#pragma once

#include <memory>
#include <string>

#include "common/blinded_tensor.h"
#include "common/worker_protocol.h"

namespace tempo::worker {

/// A device that runs the blinded products (CPU now; CUDA later), in the spirit of ggml backends.
///
/// Contract: every input has been validated by the Worker (ranks, matching dimensions, positive
/// sizes within limits, conv geometry consistent with the shapes), so a backend does no checking
/// of its own beyond what its library needs. Results are freshly allocated and never alias an
/// input. A backend may throw (std::bad_alloc, library errors); the Worker turns that into an
/// error response. A backend is used by one thread at a time.
class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;    ///< "cpu", "cuda:0"
  virtual std::string device() const = 0;  ///< human-readable

  /// C = op(A)·op(B) for rank-2 A and B; op transposes when the flag is set.
  virtual BlindedTensor matmul(const BlindedTensor& a, const BlindedTensor& b, bool trans_a,
                               bool trans_b) = 0;
  /// C[i] = op(A[i])·op(B[i]) for rank-3 A and B with equal batch dimensions.
  virtual BlindedTensor batched_matmul(const BlindedTensor& a, const BlindedTensor& b, bool trans_a,
                                       bool trans_b) = 0;
  /// Y = conv(X, W): X is N×C×H×W, W is O×C×kh×kw, Y is N×O×H'×W' (dilation 1, groups 1).
  virtual BlindedTensor conv_forward(const BlindedTensor& x, const BlindedTensor& w,
                                     const protocol::ConvParams& p) = 0;
  /// dX of shape `x_shape` from dY (N×O×H'×W') and W (O×C×kh×kw).
  virtual BlindedTensor conv_backward_data(const BlindedTensor& dy, const BlindedTensor& w,
                                           const protocol::ConvParams& p, const Shape& x_shape) = 0;
  /// dW of shape `w_shape` from X (N×C×H×W) and dY (N×O×H'×W').
  virtual BlindedTensor conv_backward_weights(const BlindedTensor& x, const BlindedTensor& dy,
                                              const protocol::ConvParams& p,
                                              const Shape& w_shape) = 0;
};

/// Creates a backend by name ("cpu"). `threads` <= 0 uses every core OpenMP offers.
/// Throws std::invalid_argument for an unknown name.
std::unique_ptr<Backend> make_backend(const std::string& name, int threads = 0);

}  // namespace tempo::worker
