// Untrusted side: the compute backend interface. It computes on blinded tensors only.
#pragma once

#include <memory>
#include <string>

#include "common/blinded_tensor.h"
#include "common/worker_protocol.h"

namespace tempo::worker {

/// Arithmetic a backend may use for its products and convolutions.
enum class Precision {
  kFp32,  ///< IEEE fp32 multiply-adds (the default; what the CPU backend does)
  kTf32,  ///< tensor cores with TF32 inputs (10-bit mantissa), fp32 accumulation (CUDA only)
};

/// "fp32" | "tf32" -> Precision; throws std::invalid_argument naming the accepted values.
Precision parse_precision(const std::string& name);
/// "fp32" | "tf32".
const char* precision_name(Precision p);

/// A device that runs the blinded products (CPU, CUDA), in the spirit of ggml backends.
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
  /// The arithmetic of its products: masters size their checks' tolerance by it (Capabilities).
  virtual Precision precision() const { return Precision::kFp32; }

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

  /// Hook: `t` enters the Worker's handle cache (called before the op that brings it in, so the
  /// backend may keep the copy that op makes). A device backend keeps its device copy of `t`,
  /// keyed by t.data(), until release(); calls nest (a count per storage). Default: nothing.
  /// The Worker's cache bound covers these copies: they mirror the operands it holds.
  virtual void retain(const BlindedTensor& t) { (void)t; }
  /// Hook: `t` leaves the Worker's handle cache (or the op that was to cache it failed).
  virtual void release(const BlindedTensor& t) { (void)t; }
};

/// Creates a backend by name: "cpu", "cuda" (device 0) or "cuda:N". `threads` <= 0 uses every
/// core OpenMP offers (the CUDA backend uses up to 8 of them to stage copies).
/// Throws std::invalid_argument for an unknown name, for "cuda" in a build without the CUDA
/// backend ("this build has no CUDA backend: configure with -DTEMPO_CUDA=ON") and for a precision
/// the backend does not offer (the CPU backend is fp32 only); std::runtime_error when CUDA is
/// built in but the device is missing (the message starts "no CUDA device:").
std::unique_ptr<Backend> make_backend(const std::string& name, int threads = 0,
                                      Precision precision = Precision::kFp32);

/// Why "cuda" backends cannot be created here ("this build has no CUDA backend: ..." or
/// "no CUDA device: ..."), or "" when cuda:0 is usable. Cheap; for tests and diagnostics.
std::string cuda_unavailable_reason();

}  // namespace tempo::worker
