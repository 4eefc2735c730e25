// oneDNN convolutions (forward, backward-data, backward-weights) with primitives cached per shape.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>

#include "common/shape.h"
#include "common/worker_protocol.h"

namespace tempo::worker {

/// Runs 2-D convolutions (dilation 1, groups 1) on NCHW activations and OIHW weights through
/// oneDNN. Primitive creation costs far more than a small convolution, so primitives are built
/// once per (direction, shapes, geometry) and reused; a training step repeats the same shapes.
/// The primitives use the blocked layouts oneDNN prefers (unless those pad the channels much),
/// with reorders from and to the plain layouts through scratch buffers that grow to the largest
/// conv seen.
/// Shapes must already be validated. Not thread-safe: one caller at a time.
class DnnlConv {
 public:
  DnnlConv();
  ~DnnlConv();
  DnnlConv(const DnnlConv&) = delete;
  DnnlConv& operator=(const DnnlConv&) = delete;

  /// y[N,O,H',W'] = conv(x[N,C,H,W], w[O,C,kh,kw]).
  void forward(const float* x, const Shape& x_shape, const float* w, const Shape& w_shape,
               const protocol::ConvParams& p, float* y);
  /// dx[x_shape] from dy[N,O,H',W'] and w[O,C,kh,kw].
  void backward_data(const float* dy, const float* w, const Shape& w_shape,
                     const protocol::ConvParams& p, float* dx, const Shape& x_shape);
  /// dw[w_shape] from x[N,C,H,W] and dy[N,O,H',W'].
  void backward_weights(const float* x, const Shape& x_shape, const float* dy,
                        const protocol::ConvParams& p, float* dw, const Shape& w_shape);

  /// Number of cached primitives (for tests and benchmarks).
  size_t cached_primitives() const;

 private:
  enum class Direction : int { kForward, kBackwardData, kBackwardWeights };
  /// direction, N, C, H, W, O, kh, kw, stride_h, stride_w, pad_h, pad_w.
  using Key = std::array<int64_t, 12>;
  struct Entry;
  struct Impl;

  Entry& entry(Direction d, const Shape& x_shape, const Shape& w_shape,
               const protocol::ConvParams& p);
  /// Builds the primitive with blocked layouts of oneDNN's choice, or with plain ones.
  Entry build(Direction d, const Shape& x_shape, const Shape& w_shape,
              const protocol::ConvParams& p, bool plain) const;
  void run(Entry& e, const float* in0, const float* in1, float* out);

  std::unique_ptr<Impl> impl_;
};

}  // namespace tempo::worker
