#include "master/optim/optimizer.h"

#include <cstring>
#include <map>
#include <set>
#include <stdexcept>

namespace tempo::optim {

Optimizer::Optimizer(std::vector<nn::NamedParameter> params, double lr) : lr_(lr) {
  if (!(lr >= 0)) throw std::invalid_argument("optimizer: learning rate must be >= 0");
  std::set<std::string> paths;
  std::set<const nn::Parameter*> seen;
  for (auto& p : params) {
    if (p.param == nullptr) throw std::invalid_argument("optimizer: null parameter " + p.path);
    if (!paths.insert(p.path).second)
      throw std::invalid_argument("optimizer: duplicate parameter name " + p.path);
    // A tied parameter listed under two paths is updated once, under its first path (as PyTorch).
    if (seen.insert(p.param).second) params_.push_back(std::move(p));
  }
}

void Optimizer::init_slots() {
  slots_.assign(slot_names().size(), {});
  for (auto& slot : slots_)
    for (const auto& p : params_) slot.push_back(Tensor::zeros(p.param->value.shape()));
}

void Optimizer::step() {
  ++steps_;
  for (size_t i = 0; i < params_.size(); ++i) {
    const nn::Parameter& p = *params_[i].param;
    if (p.grad.shape() != p.value.shape())
      throw std::logic_error("optimizer: gradient of " + params_[i].path + " has shape " +
                             p.grad.shape().to_string() + ", value " + p.value.shape().to_string());
    update(i, steps_);
  }
}

void Optimizer::zero_grad() {
  for (auto& p : params_) p.param->grad.zero();
}

OptimizerState Optimizer::state() const {
  OptimizerState s;
  s.scalars = {{"type", type()}, {"step", steps_}, {"lr", lr_}};
  const auto names = slot_names();
  for (size_t k = 0; k < names.size(); ++k)
    for (size_t i = 0; i < params_.size(); ++i)
      s.tensors.emplace_back(names[k] + "/" + params_[i].path, slots_[k][i]);
  return s;
}

void Optimizer::load_state(const OptimizerState& s) {
  const auto fail = [](const std::string& why) {
    throw std::runtime_error("optimizer state: " + why);
  };
  if (!s.scalars.is_object() || !s.scalars.contains("type") || !s.scalars["type"].is_string())
    fail("missing \"type\"");
  if (s.scalars["type"].get<std::string>() != type())
    fail("saved by " + s.scalars["type"].get<std::string>() + ", cannot load into " + type());
  if (!s.scalars.contains("step") || !s.scalars["step"].is_number_integer() ||
      s.scalars["step"].get<int64_t>() < 0)
    fail("missing or invalid \"step\"");
  if (!s.scalars.contains("lr") || !s.scalars["lr"].is_number()) fail("missing \"lr\"");

  std::map<std::string, const Tensor*> given;
  for (const auto& [name, t] : s.tensors)
    if (!given.emplace(name, &t).second) fail("duplicate tensor " + name);
  const auto names = slot_names();
  std::vector<std::vector<const Tensor*>> src(names.size());
  for (size_t k = 0; k < names.size(); ++k)
    for (size_t i = 0; i < params_.size(); ++i) {
      const std::string key = names[k] + "/" + params_[i].path;
      auto it = given.find(key);
      if (it == given.end()) fail("missing tensor " + key);
      if (it->second->shape() != slots_[k][i].shape())
        fail("tensor " + key + " has shape " + it->second->shape().to_string() + ", expected " +
             slots_[k][i].shape().to_string());
      src[k].push_back(it->second);
      given.erase(it);
    }
  if (!given.empty()) fail("unexpected tensor " + given.begin()->first);

  // Everything checked: now copy (into the existing storage, which others may share).
  for (size_t k = 0; k < names.size(); ++k)
    for (size_t i = 0; i < params_.size(); ++i)
      if (slots_[k][i].numel() > 0)
        std::memcpy(slots_[k][i].data(), src[k][i]->data(),
                    static_cast<size_t>(slots_[k][i].numel()) * sizeof(float));
  steps_ = s.scalars["step"].get<int64_t>();
  lr_ = s.scalars["lr"].get<double>();
}

}  // namespace tempo::optim
