// Plaintext tensors: trusted side only. Workers must never see this type.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

#include "common/aligned_buffer.h"
#include "common/shape.h"

namespace tempo {

/// A dense fp32 tensor in row-major order (NCHW for images), 64-byte aligned.
/// Copying a Tensor shares its storage (like PyTorch); clone() makes a deep copy. Layers never
/// modify their inputs in place, so sharing is safe and saves a copy per cached activation.
class Tensor {
 public:
  Tensor() = default;
  /// Uninitialised tensor of the given shape.
  explicit Tensor(const Shape& shape) : shape_(shape), buffer_(shape.numel()) {}

  static Tensor zeros(const Shape& shape) { return filled(shape, 0.0f); }
  static Tensor filled(const Shape& shape, float value);

  const Shape& shape() const { return shape_; }
  int rank() const { return shape_.rank(); }
  int64_t dim(int i) const { return shape_[i]; }
  int64_t numel() const { return shape_.numel(); }
  bool empty() const { return buffer_.empty(); }

  float* data() { return buffer_.data(); }
  const float* data() const { return buffer_.data(); }
  float& operator[](int64_t i) { return buffer_.data()[i]; }
  float operator[](int64_t i) const { return buffer_.data()[i]; }

  /// A deep copy.
  Tensor clone() const;
  /// The same storage viewed with another shape of equal element count.
  Tensor reshaped(const Shape& shape) const;
  void fill(float value);
  void zero() { fill(0.0f); }

  /// Throws std::invalid_argument naming `what` unless the shape equals `expected`.
  void expect_shape(const Shape& expected, const std::string& what) const;

 private:
  Shape shape_;
  AlignedBuffer buffer_;
};

}  // namespace tempo
