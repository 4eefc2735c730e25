// The only tensor type that may cross the trust boundary.
#pragma once

#include <cstdint>

#include "common/aligned_buffer.h"
#include "common/shape.h"

namespace tempo {

/// A tensor whose contents are MM-obfuscated (blinded): permuted and scaled under a key that only
/// the master holds. Workers accept and return nothing else.
///
/// There is deliberately no conversion from the master's plaintext `Tensor` (which workers cannot
/// even name: it lives under src/master/). A BlindedTensor comes from exactly three places:
///   - the master's encryptors (src/master/crypto/), the only code that sees a key;
///   - a worker's compute backend, as the product of blinded operands;
///   - the wire decoder, from bytes that a master's encryptor produced.
/// Copies share memory; use clone() for a deep copy.
class BlindedTensor {
 public:
  BlindedTensor() = default;

  /// Uninitialised storage for a result of the given shape (worker backends, decoders, encryptors).
  static BlindedTensor allocate(const Shape& shape) {
    BlindedTensor t;
    t.shape_ = shape;
    t.buffer_ = AlignedBuffer(shape.numel());
    return t;
  }

  const Shape& shape() const { return shape_; }
  int64_t dim(int i) const { return shape_[i]; }
  int rank() const { return shape_.rank(); }
  int64_t numel() const { return buffer_.size(); }
  int64_t bytes() const { return numel() * static_cast<int64_t>(sizeof(float)); }
  bool empty() const { return buffer_.empty(); }

  const float* data() const { return buffer_.data(); }
  float* mutable_data() { return buffer_.data(); }

  BlindedTensor clone() const {
    BlindedTensor t;
    t.shape_ = shape_;
    t.buffer_ = AlignedBuffer::copy_of(buffer_.data(), buffer_.size());
    return t;
  }

 private:
  Shape shape_;
  AlignedBuffer buffer_;
};

}  // namespace tempo
