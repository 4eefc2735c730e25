#include "cli/privacy_report.h"

#include <cstdio>

#include "master/offload/key_space_probe.h"

namespace tempo::cli {

void print_privacy_report(nn::Module& model, const Shape& input_shape,
                          const std::vector<offload::PlacedLayer>& placement,
                          const offload::OffloadPolicy& policy, Progress& progress) {
  const auto layers = offload::probe_key_space(model, input_shape, placement, policy);
  progress.message("privacy report (key space per offloaded tensor; batch " +
                   input_shape.to_string() + ", sigma " + std::to_string(policy.obfuscation.sigma) +
                   ", patch scales " +
                   crypto::scale_distribution_name(policy.obfuscation.patch_distribution) + "):");
  char line[512];
  double min_bits = -1;
  for (const auto& l : layers) {
    const auto& p = l.placement;
    if (!p.offloaded) {
      std::snprintf(line, sizeof line, "  %-28s %-22s TEE     (%s)", p.path.c_str(), p.type.c_str(),
                    p.reason.c_str());
      progress.message(line);
      continue;
    }
    const char* mode = p.type == "Conv2d" ? offload::to_string(p.conv_mode) : "";
    for (const auto& op : l.operations) {
      std::string tensors;
      for (const auto& t : op.tensors) {
        char buf[64];
        std::snprintf(buf, sizeof buf, " %s %.3g", t.name.c_str(), t.bits());
        tensors += buf;
        if (min_bits < 0 || t.bits() < min_bits) min_bits = t.bits();
      }
      std::snprintf(line, sizeof line, "  %-28s %-22s worker  %-7s key %.3g bits;%s",
                    p.path.c_str(), p.type.c_str(), mode, op.forward_key_bits, tensors.c_str());
      progress.message(line);
    }
  }
  if (min_bits >= 0) {
    std::snprintf(line, sizeof line, "  weakest offloaded tensor: %.3g bits of key", min_bits);
    progress.message(line);
  }
}

}  // namespace tempo::cli
