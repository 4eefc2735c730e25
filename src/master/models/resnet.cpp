#include "master/models/resnet.h"

#include <array>
#include <string>

#include "master/models/model_args.h"
#include "master/models/resnet_block.h"
#include "master/nn/activations.h"
#include "master/nn/batchnorm2d.h"
#include "master/nn/conv2d.h"
#include "master/nn/linear.h"
#include "master/nn/pooling.h"
#include "master/nn/sequential.h"

namespace tempo::models {

namespace {

enum class BlockKind { kBasic, kBottleneck };

std::unique_ptr<NamedSequential> make_resnet(const std::string& name, BlockKind kind,
                                             const std::array<int, 4>& depths, int64_t in_channels,
                                             int64_t image_size, int64_t num_classes, Rng& rng) {
  check_model_args(name, in_channels, image_size, num_classes);
  const int64_t expansion = kind == BlockKind::kBasic ? 1 : kBottleneckExpansion;
  auto net = std::make_unique<NamedSequential>();
  net->emplace<nn::Conv2d>("conv1", in_channels, 64, 3, rng, 1, 1, /*bias=*/false);
  net->emplace<nn::BatchNorm2d>("bn1", 64);
  net->emplace<nn::ReLU>("relu");
  int64_t in_planes = 64;
  for (int stage = 0; stage < 4; ++stage) {
    const int64_t planes = int64_t{64} << stage;
    auto layer = std::make_unique<nn::Sequential>();  // blocks "layerK.0", "layerK.1", ...
    for (int b = 0; b < depths[static_cast<size_t>(stage)]; ++b) {
      const int64_t stride = (stage > 0 && b == 0) ? 2 : 1;
      if (kind == BlockKind::kBasic)
        layer->add(make_basic_block(in_planes, planes, stride, rng));
      else
        layer->add(make_bottleneck(in_planes, planes, stride, rng));
      in_planes = planes * expansion;
    }
    net->add("layer" + std::to_string(stage + 1), std::move(layer));
  }
  net->emplace<nn::GlobalAvgPool2d>("avgpool");
  net->emplace<nn::Linear>("fc", in_planes, num_classes, rng);
  return net;
}

}  // namespace

std::unique_ptr<NamedSequential> make_resnet18(int64_t in_channels, int64_t image_size,
                                               int64_t num_classes, Rng& rng) {
  return make_resnet("resnet18", BlockKind::kBasic, {2, 2, 2, 2}, in_channels, image_size,
                     num_classes, rng);
}

std::unique_ptr<NamedSequential> make_resnet50(int64_t in_channels, int64_t image_size,
                                               int64_t num_classes, Rng& rng) {
  return make_resnet("resnet50", BlockKind::kBottleneck, {3, 4, 6, 3}, in_channels, image_size,
                     num_classes, rng);
}

}  // namespace tempo::models
