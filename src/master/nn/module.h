// The layer interface of the training engine.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "master/core/tensor.h"
#include "master/nn/compute.h"

namespace tempo::nn {

/// A trainable tensor with its gradient (same shape, accumulated by backward()).
struct Parameter {
  Parameter() = default;
  Parameter(std::string n, Tensor v, bool decay = true)
      : name(std::move(n)),
        value(std::move(v)),
        grad(Tensor::zeros(value.shape())),
        weight_decay(decay) {}
  std::string name;  ///< local name: "weight", "bias", ...
  Tensor value;
  Tensor grad;
  bool weight_decay = true;  ///< false for biases and normalisation parameters
};

/// A layer or a container of layers, with an explicit backward.
///
/// forward() caches what backward() needs (shared, not copied); backward() takes dL/dy, returns
/// dL/dx and *accumulates* parameter gradients (zero_grad() clears them). One forward is followed
/// by at most one backward.
class Module {
 public:
  virtual ~Module() = default;
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  /// Type name as PyTorch users know it: "Conv2d", "BatchNorm2d", ...
  virtual std::string type() const = 0;
  virtual Tensor forward(const Tensor& x) = 0;
  virtual Tensor backward(const Tensor& dy) = 0;

  /// This module's own parameters (not its children's).
  virtual void local_parameters(std::vector<Parameter*>& /*out*/) {}
  /// Non-trainable state saved in checkpoints (BatchNorm running statistics).
  virtual void local_buffers(std::vector<std::pair<std::string, Tensor*>>& /*out*/) {}
  /// Direct children with their names ("0", "conv1", "layer1", ...).
  virtual void children(std::vector<std::pair<std::string, Module*>>& /*out*/) {}
  /// True for layers whose products a Compute runs (Linear, Conv2d, attention).
  virtual bool has_products() const { return false; }
  /// Where this module's products run; the offload policy sets it. Default: plain.
  void set_compute(Compute* c) { compute_ = c; }
  Compute& compute() const { return *compute_; }

  void train(bool on);  ///< recursive
  bool training() const { return training_; }

 protected:
  bool training_ = true;
  Compute* compute_ = &plain_compute();
};

/// A module together with its dotted path in the model ("layer1.0.conv1").
struct NamedModule {
  std::string path;
  Module* module;
};
struct NamedParameter {
  std::string path;  ///< "layer1.0.conv1.weight"
  Parameter* param;
};
struct NamedBuffer {
  std::string path;
  Tensor* tensor;
};

/// Pre-order traversal of the module tree (the root has path "").
std::vector<NamedModule> named_modules(Module& root);
std::vector<NamedParameter> named_parameters(Module& root);
std::vector<NamedBuffer> named_buffers(Module& root);
void zero_grad(Module& root);
int64_t parameter_count(Module& root);

}  // namespace tempo::nn
