// A chain of modules with names, so that model paths read like torchvision's ("conv1", "layer1").
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "master/nn/module.h"

namespace tempo::models {

/// Applies its children in insertion order, like nn::Sequential, but each child has a name that
/// becomes its path component in named_modules()/named_parameters() ("fc" instead of "5").
class NamedSequential final : public nn::Module {
 public:
  NamedSequential() = default;
  /// Appends a module under `name` (unique within this container); returns a reference to it.
  template <class M>
  M& add(std::string name, std::unique_ptr<M> m) {
    M& ref = *m;
    check_name(name);
    layers_.emplace_back(std::move(name), std::move(m));
    return ref;
  }
  template <class M, class... Args>
  M& emplace(std::string name, Args&&... args) {
    return add(std::move(name), std::make_unique<M>(std::forward<Args>(args)...));
  }
  size_t size() const { return layers_.size(); }
  /// The child called `name`; throws std::out_of_range if there is none.
  nn::Module& at(const std::string& name);

  std::string type() const override { return "Sequential"; }
  Tensor forward(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;
  void children(std::vector<std::pair<std::string, nn::Module*>>& out) override;

 private:
  void check_name(const std::string& name) const;
  std::vector<std::pair<std::string, std::unique_ptr<nn::Module>>> layers_;
};

}  // namespace tempo::models
