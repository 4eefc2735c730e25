#include "master/core/tensor.h"

#include <algorithm>
#include <stdexcept>

namespace tempo {

Tensor Tensor::filled(const Shape& shape, float value) {
  Tensor t(shape);
  t.fill(value);
  return t;
}

Tensor Tensor::clone() const {
  Tensor t;
  t.shape_ = shape_;
  t.buffer_ = AlignedBuffer::copy_of(buffer_.data(), buffer_.size());
  return t;
}

Tensor Tensor::reshaped(const Shape& shape) const {
  if (shape.numel() != numel())
    throw std::invalid_argument("reshape " + shape_.to_string() + " -> " + shape.to_string() +
                                ": element counts differ");
  Tensor t = *this;
  t.shape_ = shape;
  return t;
}

void Tensor::fill(float value) { std::fill(data(), data() + numel(), value); }

void Tensor::expect_shape(const Shape& expected, const std::string& what) const {
  if (shape_ != expected)
    throw std::invalid_argument(what + ": expected shape " + expected.to_string() + ", got " +
                                shape_.to_string());
}

}  // namespace tempo
