// Fully connected layer.
#pragma once

#include <memory>

#include "master/core/random.h"
#include "master/nn/module.h"

namespace tempo::nn {

/// y = x·W + b for x of shape [batch, in] (or [..., in]: leading dimensions are flattened).
/// W is stored as [in, out] so that the product is exactly PROTOCOL.md's Y = X·W.
/// Initialisation as PyTorch: U(-1/sqrt(in), 1/sqrt(in)) for W and b.
class Linear final : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, Rng& rng, bool bias = true);
  std::string type() const override { return "Linear"; }
  Tensor forward(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;
  void local_parameters(std::vector<Parameter*>& out) override;
  bool has_products() const override { return true; }

  Parameter& weight() { return weight_; }
  Parameter& bias() { return bias_; }
  int64_t in_features() const { return in_; }
  int64_t out_features() const { return out_; }

 private:
  int64_t in_, out_;
  bool has_bias_;
  Parameter weight_, bias_;
  Shape input_shape_;
  std::unique_ptr<SavedProduct> saved_;
};

}  // namespace tempo::nn
