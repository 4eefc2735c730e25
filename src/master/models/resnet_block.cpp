#include "master/models/resnet_block.h"

#include <stdexcept>
#include <utility>

#include "master/models/named_sequential.h"
#include "master/nn/batchnorm2d.h"
#include "master/nn/conv2d.h"
#include "master/nn/sequential.h"

namespace tempo::models {

ResNetBlock::ResNetBlock(std::string type, std::unique_ptr<nn::Module> body,
                         std::unique_ptr<nn::Module> shortcut, std::string out_relu_name)
    : type_(std::move(type)),
      out_relu_name_(std::move(out_relu_name)),
      residual_(std::move(body), std::move(shortcut)) {}

Tensor ResNetBlock::forward(const Tensor& x) { return relu_.forward(residual_.forward(x)); }

Tensor ResNetBlock::backward(const Tensor& dy) { return residual_.backward(relu_.backward(dy)); }

void ResNetBlock::children(std::vector<std::pair<std::string, nn::Module*>>& out) {
  residual_.body().children(out);
  if (nn::Module* s = residual_.shortcut()) out.emplace_back("downsample", s);
  out.emplace_back(out_relu_name_, &relu_);
}

namespace {

// Convolutions followed by BN carry no bias (as torchvision).
std::unique_ptr<nn::Module> projection(int64_t in, int64_t out, int64_t stride, Rng& rng) {
  auto s = std::make_unique<nn::Sequential>();  // paths "downsample.0", "downsample.1"
  s->emplace<nn::Conv2d>(in, out, 1, rng, stride, 0, /*bias=*/false);
  s->emplace<nn::BatchNorm2d>(out);
  return s;
}

void check_block_args(const char* what, int64_t in_planes, int64_t planes, int64_t stride) {
  if (in_planes <= 0 || planes <= 0 || stride <= 0)
    throw std::invalid_argument(std::string(what) + ": in_planes, planes and stride must be > 0");
}

}  // namespace

std::unique_ptr<ResNetBlock> make_basic_block(int64_t in_planes, int64_t planes, int64_t stride,
                                              Rng& rng) {
  check_block_args("BasicBlock", in_planes, planes, stride);
  auto body = std::make_unique<NamedSequential>();
  body->emplace<nn::Conv2d>("conv1", in_planes, planes, 3, rng, stride, 1, false);
  body->emplace<nn::BatchNorm2d>("bn1", planes);
  body->emplace<nn::ReLU>("relu1");
  body->emplace<nn::Conv2d>("conv2", planes, planes, 3, rng, 1, 1, false);
  body->emplace<nn::BatchNorm2d>("bn2", planes);
  std::unique_ptr<nn::Module> shortcut;
  if (stride != 1 || in_planes != planes) shortcut = projection(in_planes, planes, stride, rng);
  return std::make_unique<ResNetBlock>("BasicBlock", std::move(body), std::move(shortcut), "relu2");
}

std::unique_ptr<ResNetBlock> make_bottleneck(int64_t in_planes, int64_t planes, int64_t stride,
                                             Rng& rng) {
  check_block_args("Bottleneck", in_planes, planes, stride);
  const int64_t out = planes * kBottleneckExpansion;
  auto body = std::make_unique<NamedSequential>();
  body->emplace<nn::Conv2d>("conv1", in_planes, planes, 1, rng, 1, 0, false);
  body->emplace<nn::BatchNorm2d>("bn1", planes);
  body->emplace<nn::ReLU>("relu1");
  body->emplace<nn::Conv2d>("conv2", planes, planes, 3, rng, stride, 1, false);
  body->emplace<nn::BatchNorm2d>("bn2", planes);
  body->emplace<nn::ReLU>("relu2");
  body->emplace<nn::Conv2d>("conv3", planes, out, 1, rng, 1, 0, false);
  body->emplace<nn::BatchNorm2d>("bn3", out);
  std::unique_ptr<nn::Module> shortcut;
  if (stride != 1 || in_planes != out) shortcut = projection(in_planes, out, stride, rng);
  return std::make_unique<ResNetBlock>("Bottleneck", std::move(body), std::move(shortcut), "relu3");
}

}  // namespace tempo::models
