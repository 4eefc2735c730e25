#include "master/attack/recorded_layers.h"

#include <cstring>
#include <map>
#include <optional>
#include <stdexcept>

#include "master/nn/conv2d.h"
#include "master/nn/linear.h"

namespace tempo::attack {

namespace {

struct Candidate {
  std::string path;
  nn::Module* module;
  Shape linear_w, patch_w, channel_w;  // empty rank when not applicable
};

}  // namespace

const char* to_string(ProductForm form) {
  switch (form) {
    case ProductForm::kLinear:
      return "linear";
    case ProductForm::kPatchConv:
      return "patch";
    case ProductForm::kChannelConv:
      return "channel";
  }
  return "?";
}

const ForwardRecord& RecordedLayer::last() const {
  if (forwards.empty()) throw std::logic_error("RecordedLayer " + path + " has no forward");
  for (auto it = forwards.rbegin(); it != forwards.rend(); ++it)
    if (it->training) return *it;
  return forwards.back();
}

Tensor load_tensor(const ViewReader& view, size_t index) {
  BlindedTensor b = view.load(index);
  Tensor t(b.shape());
  std::memcpy(t.data(), b.data(), static_cast<size_t>(b.bytes()));
  return t;
}

std::vector<RecordedLayer> locate_layers(const ViewReader& view, nn::Module& model) {
  std::vector<Candidate> cands;
  for (const auto& nm : nn::named_modules(model)) {
    if (auto* lin = dynamic_cast<nn::Linear*>(nm.module)) {
      cands.push_back({nm.path, nm.module, {lin->in_features(), lin->out_features()}, {}, {}});
    } else if (auto* conv = dynamic_cast<nn::Conv2d*>(nm.module)) {
      const int64_t o = conv->out_channels(), c = conv->in_channels(), k = conv->kernel_size();
      cands.push_back({nm.path, nm.module, {}, {o, c * k * k}, {o, c, k, k}});
    }
  }
  std::vector<RecordedLayer> found(cands.size());
  for (size_t i = 0; i < cands.size(); ++i) {
    found[i].path = cands[i].path;
    found[i].module = cands[i].module;
  }

  // Group the records by request: a forward sends both operands inline.
  std::map<uint64_t, std::pair<std::optional<size_t>, std::optional<size_t>>> by_request;
  std::vector<uint64_t> order;
  for (size_t i = 0; i < view.size(); ++i) {
    const ViewEntry& e = view[i];
    if (e.op != protocol::Op::kMatMul && e.op != protocol::Op::kConvForward) continue;
    auto [it, fresh] = by_request.try_emplace(e.request_id);
    if (fresh) order.push_back(e.request_id);
    (e.role == 'a' ? it->second.first : it->second.second) = i;
  }
  size_t cursor = 0;
  for (uint64_t id : order) {
    const auto& [a, b] = by_request[id];
    if (!a || !b) continue;  // a backward product: one operand came from the cache
    const ViewEntry& w = view[*b];
    for (size_t step = 0; step < cands.size(); ++step) {
      const size_t li = (cursor + step) % cands.size();
      const Candidate& c = cands[li];
      std::optional<ProductForm> form;
      if (w.op == protocol::Op::kConvForward) {
        if (c.channel_w.rank() == 4 && w.shape == c.channel_w) form = ProductForm::kChannelConv;
      } else if (c.linear_w.rank() == 2 && w.shape == c.linear_w) {
        form = ProductForm::kLinear;
      } else if (c.patch_w.rank() == 2 && w.shape == c.patch_w) {
        form = ProductForm::kPatchConv;
      }
      if (!form) continue;
      found[li].form = *form;
      found[li].forwards.push_back({*a, *b, view[*a].handle != 0});
      cursor = li + 1;
      break;
    }
  }
  std::vector<RecordedLayer> out;
  for (auto& f : found)
    if (!f.forwards.empty()) out.push_back(std::move(f));
  return out;
}

}  // namespace tempo::attack
