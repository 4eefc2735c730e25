// Where a layer's heavy linear algebra runs: the seam between the engine and the offload protocol.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>

#include "master/core/tensor.h"

namespace tempo::nn {

/// Geometry of a 2-D convolution (dilation 1, groups 1).
struct ConvGeometry {
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;

  int64_t out_h(int64_t in_h, int64_t kh) const { return (in_h + 2 * pad_h - kh) / stride_h + 1; }
  int64_t out_w(int64_t in_w, int64_t kw) const { return (in_w + 2 * pad_w - kw) / stride_w + 1; }
};

/// A Compute cannot run a product now (e.g. no worker is left to offload it to). The trainer
/// writes a checkpoint of the last completed step before it passes this on.
struct ComputeUnavailableError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// What a Compute keeps between a forward product and its backward (operands, keys, handles).
class SavedProduct {
 public:
  virtual ~SavedProduct() = default;
};

/// The heavy products of Linear, Conv2d and attention layers.
///
/// PlainCompute runs them here in the TEE (the pure-TEE baseline). The Tempo offload engine
/// blinds them (PROTOCOL.md sections 2-4) and has untrusted workers compute them. Layers hold a
/// Compute* chosen by the offload policy, so a layer never knows where its products run.
///
/// `saved` is null in inference: nothing is kept for a backward. Otherwise forward fills it and
/// the matching backward consumes and releases it.
class Compute {
 public:
  virtual ~Compute() = default;
  virtual const char* name() const = 0;

  /// Y[m,n] = X[m,k] · W[k,n].
  virtual Tensor matmul(const Tensor& x, const Tensor& w, std::unique_ptr<SavedProduct>* saved) = 0;
  /// From dY[m,n]: dX = dY·Wᵀ into *dx and dW = Xᵀ·dY into *dw (either may be null: not needed).
  /// Results overwrite (do not accumulate). Releases `saved`.
  virtual void matmul_backward(const Tensor& dy, std::unique_ptr<SavedProduct>* saved, Tensor* dx,
                               Tensor* dw) = 0;

  /// Y = conv2d(X, W): X[N,C,H,W], W[O,C,kh,kw] -> Y[N,O,H',W'] (no bias).
  virtual Tensor conv2d(const Tensor& x, const Tensor& w, const ConvGeometry& g,
                        std::unique_ptr<SavedProduct>* saved) = 0;
  /// dX (conv backward-data) and dW (conv backward-weights), overwriting. Releases `saved`.
  virtual void conv2d_backward(const Tensor& dy, std::unique_ptr<SavedProduct>* saved, Tensor* dx,
                               Tensor* dw) = 0;

  /// C[b] = op(A[b]) · op(B[b]) for rank-3 tensors, op = transpose when the flag is set.
  /// Nothing is kept for a backward.
  virtual Tensor batched_matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) = 0;

  /// C[b] = A[b] · op(B[b]) (A [batch, m, k]; B [batch, k, n], or [batch, n, k] with trans_b),
  /// keeping in *saved what batched_matmul_backward needs (attention's Q·Kᵀ and A·V; both
  /// operands are activations). The default runs batched_matmul and keeps the operands; the
  /// Tempo compute keeps them blinded on the worker (the key shift, PROTOCOL.md section 4).
  virtual Tensor batched_matmul_forward(const Tensor& a, const Tensor& b, bool trans_b,
                                        std::unique_ptr<SavedProduct>* saved);
  /// From dC [batch, m, n]: dA = dC·op(B)ᵀ into *da and dB (the layout of B) into *db (either
  /// may be null), overwriting. Releases `saved`. The default makes them with batched_matmul.
  virtual void batched_matmul_backward(const Tensor& dc, std::unique_ptr<SavedProduct>* saved,
                                       Tensor* da, Tensor* db);
};

/// The process-wide plain (in-TEE) compute.
Compute& plain_compute();

}  // namespace tempo::nn
