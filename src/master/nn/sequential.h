// A chain of modules applied in order.
#pragma once

#include <memory>
#include <vector>

#include "master/nn/module.h"

namespace tempo::nn {

class Sequential final : public Module {
 public:
  Sequential() = default;
  /// Appends a module; returns a reference to it for further configuration.
  template <class M>
  M& add(std::unique_ptr<M> m) {
    M& ref = *m;
    layers_.push_back(std::move(m));
    return ref;
  }
  template <class M, class... Args>
  M& emplace(Args&&... args) {
    return add(std::make_unique<M>(std::forward<Args>(args)...));
  }
  size_t size() const { return layers_.size(); }
  Module& operator[](size_t i) { return *layers_[i]; }

  std::string type() const override { return "Sequential"; }
  Tensor forward(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;
  void children(std::vector<std::pair<std::string, Module*>>& out) override;

 private:
  std::vector<std::unique_ptr<Module>> layers_;
};

}  // namespace tempo::nn
