#include "master/nn/flatten.h"

#include <stdexcept>

namespace tempo::nn {

Tensor Flatten::forward(const Tensor& x) {
  if (x.rank() < 1) throw std::invalid_argument("Flatten: input must have a batch dimension");
  input_shape_ = x.shape();
  const int64_t n = x.dim(0);
  return x.reshaped({n, n == 0 ? 0 : x.numel() / n});
}

Tensor Flatten::backward(const Tensor& dy) {
  if (input_shape_.rank() == 0) throw std::logic_error("Flatten: backward without forward");
  if (dy.numel() != input_shape_.numel() || dy.rank() != 2 || dy.dim(0) != input_shape_[0])
    throw std::invalid_argument("Flatten backward: dY " + dy.shape().to_string() +
                                " does not match input " + input_shape_.to_string());
  return dy.reshaped(input_shape_);
}

}  // namespace tempo::nn
