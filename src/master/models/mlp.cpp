#include "master/models/mlp.h"

#include "master/models/model_args.h"
#include "master/nn/activations.h"
#include "master/nn/flatten.h"
#include "master/nn/linear.h"

namespace tempo::models {

std::unique_ptr<NamedSequential> make_mlp(int64_t in_channels, int64_t image_size,
                                          int64_t num_classes, Rng& rng) {
  check_model_args("mlp", in_channels, image_size, num_classes);
  auto net = std::make_unique<NamedSequential>();
  net->emplace<nn::Flatten>("flatten");
  net->emplace<nn::Linear>("fc1", in_channels * image_size * image_size, 256, rng);
  net->emplace<nn::ReLU>("relu1");
  net->emplace<nn::Linear>("fc2", 256, 128, rng);
  net->emplace<nn::ReLU>("relu2");
  net->emplace<nn::Linear>("fc3", 128, num_classes, rng);
  return net;
}

}  // namespace tempo::models
