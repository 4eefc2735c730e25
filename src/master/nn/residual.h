// Residual connection.
#pragma once

#include <memory>

#include "master/nn/module.h"

namespace tempo::nn {

/// y = body(x) + shortcut(x), where a null shortcut is the identity.
/// (ResNet blocks put their final ReLU after this module; ViT blocks use it as is.)
class Residual final : public Module {
 public:
  explicit Residual(std::unique_ptr<Module> body, std::unique_ptr<Module> shortcut = nullptr);
  std::string type() const override { return "Residual"; }
  Tensor forward(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;
  void children(std::vector<std::pair<std::string, Module*>>& out) override;

  Module& body() { return *body_; }
  Module* shortcut() { return shortcut_.get(); }

 private:
  std::unique_ptr<Module> body_, shortcut_;
};

}  // namespace tempo::nn
