#include "master/models/named_sequential.h"

#include <stdexcept>

namespace tempo::models {

void NamedSequential::check_name(const std::string& name) const {
  if (name.empty() || name.find('.') != std::string::npos)
    throw std::invalid_argument("NamedSequential: bad child name '" + name + "'");
  for (const auto& [n, m] : layers_)
    if (n == name) throw std::invalid_argument("NamedSequential: duplicate child '" + name + "'");
}

nn::Module& NamedSequential::at(const std::string& name) {
  for (auto& [n, m] : layers_)
    if (n == name) return *m;
  throw std::out_of_range("NamedSequential: no child '" + name + "'");
}

Tensor NamedSequential::forward(const Tensor& x) {
  Tensor h = x;
  for (auto& [name, m] : layers_) h = m->forward(h);
  return h;
}

Tensor NamedSequential::backward(const Tensor& dy) {
  Tensor g = dy;
  for (auto it = layers_.rbegin(); it != layers_.rend(); ++it) g = it->second->backward(g);
  return g;
}

void NamedSequential::children(std::vector<std::pair<std::string, nn::Module*>>& out) {
  for (auto& [name, m] : layers_) out.emplace_back(name, m.get());
}

}  // namespace tempo::models
