// ResNet residual blocks (BasicBlock and Bottleneck, as torchvision).
#pragma once

#include <memory>
#include <string>

#include "master/core/random.h"
#include "master/nn/activations.h"
#include "master/nn/module.h"
#include "master/nn/residual.h"

namespace tempo::models {

/// relu(body(x) + shortcut(x)), built from nn::Residual followed by nn::ReLU.
///
/// The block reports the body's layers, the shortcut and the final ReLU as its own direct
/// children, so that paths are torchvision's: "conv1", "bn1", ..., "downsample.0" (conv),
/// "downsample.1" (BN). The Residual and the body's container therefore do not appear in
/// named_modules(); they hold no parameters or buffers, have no products and ignore train().
/// The ReLU after bn_k is "relu<k>", the one after the addition is the last "relu<k>".
class ResNetBlock final : public nn::Module {
 public:
  /// `type` is "BasicBlock" or "Bottleneck". `body`'s children are reported as this block's.
  ResNetBlock(std::string type, std::unique_ptr<nn::Module> body,
              std::unique_ptr<nn::Module> shortcut, std::string out_relu_name);
  std::string type() const override { return type_; }
  Tensor forward(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;
  void children(std::vector<std::pair<std::string, nn::Module*>>& out) override;

 private:
  std::string type_, out_relu_name_;
  nn::Residual residual_;
  nn::ReLU relu_;
};

/// torchvision BasicBlock (expansion 1): conv3x3(stride)-BN-ReLU-conv3x3-BN, plus a 1x1
/// conv(stride)-BN shortcut when stride != 1 or in_planes != planes.
std::unique_ptr<ResNetBlock> make_basic_block(int64_t in_planes, int64_t planes, int64_t stride,
                                              Rng& rng);

/// torchvision Bottleneck (ResNet v1.5, expansion 4): conv1x1-BN-ReLU-conv3x3(stride)-BN-ReLU-
/// conv1x1-BN, output 4·planes channels; 1x1 conv(stride)-BN shortcut when the shape changes.
std::unique_ptr<ResNetBlock> make_bottleneck(int64_t in_planes, int64_t planes, int64_t stride,
                                             Rng& rng);

/// Channel expansion of a Bottleneck (its output has 4·planes channels).
inline constexpr int64_t kBottleneckExpansion = 4;

}  // namespace tempo::models
