// Softmax cross-entropy loss.
#pragma once

#include <cstdint>
#include <vector>

#include "master/core/tensor.h"

namespace tempo::nn {

/// Mean over the batch of -log softmax(logits)[label], with optional label smoothing ε
/// (target = (1-ε)·onehot + ε/classes, as PyTorch's CrossEntropyLoss(label_smoothing=ε)).
class CrossEntropyLoss {
 public:
  explicit CrossEntropyLoss(float label_smoothing = 0.0f) : smoothing_(label_smoothing) {}
  /// logits [N, classes]; labels in [0, classes). Returns the mean loss; throws on bad labels.
  float forward(const Tensor& logits, const std::vector<int32_t>& labels);
  /// dL/dlogits for the last forward.
  Tensor backward() const;
  /// Number of correct arg-max predictions in the last forward.
  int64_t correct() const { return correct_; }

 private:
  float smoothing_;
  Tensor probs_;
  std::vector<int32_t> labels_;
  int64_t correct_ = 0;
};

}  // namespace tempo::nn
