#include "master/nn/module.h"

namespace tempo::nn {

namespace {
void walk(Module& m, const std::string& path, std::vector<NamedModule>& out) {
  out.push_back({path, &m});
  std::vector<std::pair<std::string, Module*>> kids;
  m.children(kids);
  for (auto& [name, child] : kids) walk(*child, path.empty() ? name : path + "." + name, out);
}
std::string join(const std::string& a, const std::string& b) { return a.empty() ? b : a + "." + b; }
}  // namespace

void Module::train(bool on) {
  for (auto& nm : named_modules(*this)) nm.module->training_ = on;
}

std::vector<NamedModule> named_modules(Module& root) {
  std::vector<NamedModule> out;
  walk(root, "", out);
  return out;
}

std::vector<NamedParameter> named_parameters(Module& root) {
  std::vector<NamedParameter> out;
  for (auto& nm : named_modules(root)) {
    std::vector<Parameter*> ps;
    nm.module->local_parameters(ps);
    for (Parameter* p : ps) out.push_back({join(nm.path, p->name), p});
  }
  return out;
}

std::vector<NamedBuffer> named_buffers(Module& root) {
  std::vector<NamedBuffer> out;
  for (auto& nm : named_modules(root)) {
    std::vector<std::pair<std::string, Tensor*>> bs;
    nm.module->local_buffers(bs);
    for (auto& [name, t] : bs) out.push_back({join(nm.path, name), t});
  }
  return out;
}

void zero_grad(Module& root) {
  for (auto& np : named_parameters(root)) np.param->grad.zero();
}

int64_t parameter_count(Module& root) {
  int64_t n = 0;
  for (auto& np : named_parameters(root)) n += np.param->value.numel();
  return n;
}

}  // namespace tempo::nn
