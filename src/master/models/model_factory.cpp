#include "master/models/model_factory.h"

#include <stdexcept>

#include "master/models/cnn.h"
#include "master/models/mlp.h"
#include "master/models/resnet.h"
#include "master/models/vit.h"

namespace tempo::models {

const std::vector<std::string>& model_names() {
  static const std::vector<std::string> names = {"mlp",      "cnn",      "resnet18",
                                                 "resnet50", "vit-tiny", "vit-s4"};
  return names;
}

std::unique_ptr<nn::Module> make_model(const std::string& name, int64_t in_channels,
                                       int64_t image_size, int64_t num_classes, Rng& rng) {
  if (name == "mlp") return make_mlp(in_channels, image_size, num_classes, rng);
  if (name == "cnn") return make_cnn(in_channels, image_size, num_classes, rng);
  if (name == "resnet18") return make_resnet18(in_channels, image_size, num_classes, rng);
  if (name == "resnet50") return make_resnet50(in_channels, image_size, num_classes, rng);
  if (name == "vit-tiny")
    return make_vit(vit_tiny_config(), in_channels, image_size, num_classes, rng);
  if (name == "vit-s4") return make_vit(vit_s4_config(), in_channels, image_size, num_classes, rng);
  std::string valid;
  for (const auto& n : model_names()) valid += (valid.empty() ? "" : ", ") + n;
  throw std::invalid_argument("unknown model '" + name + "'; valid models: " + valid);
}

}  // namespace tempo::models
