#include "master/models/cnn.h"

#include <stdexcept>
#include <string>

#include "master/models/model_args.h"
#include "master/nn/activations.h"
#include "master/nn/batchnorm2d.h"
#include "master/nn/conv2d.h"
#include "master/nn/flatten.h"
#include "master/nn/linear.h"
#include "master/nn/pooling.h"

namespace tempo::models {

std::unique_ptr<NamedSequential> make_cnn(int64_t in_channels, int64_t image_size,
                                          int64_t num_classes, Rng& rng) {
  check_model_args("cnn", in_channels, image_size, num_classes);
  if (image_size < 4)
    throw std::invalid_argument("cnn: image_size " + std::to_string(image_size) +
                                " is below 4 (two 2x2 max-pools)");
  const int64_t features = image_size / 2 / 2;  // two floor-mode 2x2 pools
  auto net = std::make_unique<NamedSequential>();
  net->emplace<nn::Conv2d>("conv1", in_channels, 32, 3, rng, 1, 1, /*bias=*/false);
  net->emplace<nn::BatchNorm2d>("bn1", 32);
  net->emplace<nn::ReLU>("relu1");
  net->emplace<nn::MaxPool2d>("pool1", 2, 2);
  net->emplace<nn::Conv2d>("conv2", 32, 64, 3, rng, 1, 1, /*bias=*/false);
  net->emplace<nn::BatchNorm2d>("bn2", 64);
  net->emplace<nn::ReLU>("relu2");
  net->emplace<nn::MaxPool2d>("pool2", 2, 2);
  net->emplace<nn::Flatten>("flatten");
  net->emplace<nn::Linear>("fc1", 64 * features * features, 128, rng);
  net->emplace<nn::ReLU>("relu3");
  net->emplace<nn::Linear>("fc2", 128, num_classes, rng);
  return net;
}

}  // namespace tempo::models
