#include "master/offload/key_space_probe.h"

#include <memory>

#include "master/crypto/conv_shape.h"

namespace tempo::offload {

namespace {

/// Computes in the TEE like PlainCompute, noting the key space of each product on the way.
class KeySpaceRecorder final : public nn::Compute {
 public:
  KeySpaceRecorder(const crypto::KeySpace& ks, ConvMode mode,
                   std::vector<crypto::OperationKeySpace>& out)
      : ks_(ks), mode_(mode), out_(out) {}
  const char* name() const override { return "key-space-probe"; }
  Tensor matmul(const Tensor& x, const Tensor& w, std::unique_ptr<nn::SavedProduct>*) override {
    out_.push_back(ks_.matmul(x.dim(0), x.dim(1), w.dim(1)));
    return nn::plain_compute().matmul(x, w, nullptr);
  }
  void matmul_backward(const Tensor&, std::unique_ptr<nn::SavedProduct>*, Tensor*,
                       Tensor*) override {}
  Tensor conv2d(const Tensor& x, const Tensor& w, const nn::ConvGeometry& g,
                std::unique_ptr<nn::SavedProduct>*) override {
    const auto s = crypto::ConvShape::of(x.shape(), w.shape(), g);
    out_.push_back(mode_ == ConvMode::kPatch ? ks_.patch_conv(s) : ks_.conv_channel(s));
    return nn::plain_compute().conv2d(x, w, g, nullptr);
  }
  void conv2d_backward(const Tensor&, std::unique_ptr<nn::SavedProduct>*, Tensor*,
                       Tensor*) override {}
  Tensor batched_matmul(const Tensor& a, const Tensor& b, bool ta, bool tb) override {
    const int64_t m = ta ? a.dim(2) : a.dim(1), k = ta ? a.dim(1) : a.dim(2);
    const int64_t n = tb ? b.dim(1) : b.dim(2);
    out_.push_back(ks_.batched_matmul(a.dim(0), m, k, n));
    return nn::plain_compute().batched_matmul(a, b, ta, tb);
  }

 private:
  const crypto::KeySpace& ks_;
  ConvMode mode_;
  std::vector<crypto::OperationKeySpace>& out_;
};

}  // namespace

std::vector<LayerKeySpace> probe_key_space(nn::Module& model, const Shape& input_shape,
                                           const std::vector<PlacedLayer>& placement,
                                           const OffloadPolicy& policy) {
  const crypto::KeySpace ks(policy.obfuscation);
  std::vector<LayerKeySpace> result(placement.size());
  std::vector<std::unique_ptr<KeySpaceRecorder>> recorders;
  std::map<std::string, std::pair<nn::Module*, nn::Compute*>> restore;
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < placement.size(); ++i) {
    result[i].placement = placement[i];
    index[placement[i].path] = i;
  }
  for (auto& nm : nn::named_modules(model)) {
    auto it = index.find(nm.path);
    if (it == index.end() || !placement[it->second].offloaded) continue;
    restore[nm.path] = {nm.module, &nm.module->compute()};
    recorders.push_back(std::make_unique<KeySpaceRecorder>(ks, placement[it->second].conv_mode,
                                                           result[it->second].operations));
    nm.module->set_compute(recorders.back().get());
  }
  const bool was_training = model.training();
  model.train(false);
  try {
    model.forward(Tensor::zeros(input_shape));
  } catch (...) {
    for (auto& [_, mc] : restore) mc.first->set_compute(mc.second);
    model.train(was_training);
    throw;
  }
  for (auto& [_, mc] : restore) mc.first->set_compute(mc.second);
  model.train(was_training);
  return result;
}

}  // namespace tempo::offload
