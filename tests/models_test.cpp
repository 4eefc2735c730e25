// The model zoo: shapes, gradients, parameter paths and counts, and that training reduces loss.

#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "gradcheck.h"
#include "master/core/random.h"
#include "master/models/model_factory.h"
#include "master/models/named_sequential.h"
#include "master/models/patch_embed.h"
#include "master/models/position_embedding.h"
#include "master/models/resnet_block.h"
#include "master/models/token_pool.h"
#include "master/nn/activations.h"
#include "master/nn/loss.h"
#include "master/nn/module.h"

namespace tempo {
namespace {

using testing::random_tensor;

std::set<std::string> parameter_paths(nn::Module& m) {
  std::set<std::string> out;
  for (auto& np : nn::named_parameters(m)) out.insert(np.path);
  return out;
}

bool all_finite(const Tensor& t) {
  for (int64_t i = 0; i < t.numel(); ++i)
    if (!std::isfinite(t[i])) return false;
  return true;
}

struct ModelCase {
  const char* name;
  int64_t channels, size;
  /// From tools/make_torch_fixtures.py --counts: torchvision's ResNet with the CIFAR stem
  /// (conv1 3x3 stride 1, maxpool = Identity) and our other layouts written in PyTorch.
  int64_t torch_parameter_count;
  /// Train-mode forward and backward on a batch of 2; otherwise (the two big models, to keep the
  /// test fast under ASan) one eval-mode forward on a single image.
  bool backward;
  /// Parameter and buffer paths the model must have (checkpoints and the offload policy use them).
  std::vector<std::string> expected_paths = {};
  /// Paths it must not have.
  std::vector<std::string> absent_paths = {};
};

// torchvision's names. layer1 keeps 64 channels in resnet18 (no projection) but not in resnet50;
// convolutions before BN carry no bias.
const std::vector<std::string> kResNet18Paths = {"conv1.weight",
                                                 "bn1.weight",
                                                 "bn1.bias",
                                                 "bn1.running_var",
                                                 "layer1.0.conv1.weight",
                                                 "layer1.1.bn2.bias",
                                                 "layer2.0.downsample.0.weight",
                                                 "layer2.0.downsample.1.weight",
                                                 "layer3.0.downsample.1.running_mean",
                                                 "layer4.1.conv2.weight",
                                                 "fc.weight",
                                                 "fc.bias"};
const std::vector<std::string> kResNet18Absent = {"layer1.0.downsample.0.weight", "conv1.bias",
                                                  "layer1.0.conv3.weight"};
const std::vector<std::string> kResNet50Paths = {
    "layer1.0.downsample.0.weight", "layer1.0.conv3.weight",     "layer3.5.bn3.weight",
    "layer4.2.conv3.weight",        "layer4.2.bn3.running_mean", "fc.weight"};
// timm's names.
const std::vector<std::string> kVitPaths = {"patch_embed.proj.weight",
                                            "patch_embed.proj.bias",
                                            "pos_embed.weight",
                                            "blocks.0.norm1.weight",
                                            "blocks.0.attn.qkv.weight",
                                            "blocks.0.attn.proj.bias",
                                            "blocks.0.norm2.bias",
                                            "blocks.0.mlp.fc1.weight",
                                            "blocks.3.mlp.fc2.bias",
                                            "norm.weight",
                                            "head.weight",
                                            "head.bias"};

std::string case_name(const ::testing::TestParamInfo<ModelCase>& info) {
  std::string s = std::string(info.param.name) + "_" + std::to_string(info.param.channels) + "x" +
                  std::to_string(info.param.size);
  for (char& c : s)
    if (c == '-') c = '_';
  return s;
}

class EveryModel : public ::testing::TestWithParam<ModelCase> {};

// One build per case: the checks share it because building resnet50/vit-s4 costs more than
// running them on one image.
TEST_P(EveryModel, GivesLogitsGradientsTorchNamesAndPytorchParameterCount) {
  const ModelCase& c = GetParam();
  Rng rng(11);
  auto model = models::make_model(c.name, c.channels, c.size, 10, rng);
  EXPECT_EQ(nn::parameter_count(*model), c.torch_parameter_count);

  std::set<std::string> paths;
  for (auto& nm : nn::named_modules(*model))
    EXPECT_TRUE(paths.insert(nm.path).second) << "duplicate module path " << nm.path;
  std::set<std::string> state = parameter_paths(*model);
  for (auto& nb : nn::named_buffers(*model)) state.insert(nb.path);
  for (const auto& path : c.expected_paths) EXPECT_TRUE(state.count(path)) << "no " << path;
  for (const auto& path : c.absent_paths) EXPECT_FALSE(state.count(path)) << "unexpected " << path;

  const int64_t batch = c.backward ? 2 : 1;
  model->train(c.backward);
  Tensor x = random_tensor({batch, c.channels, c.size, c.size}, rng);
  Tensor y = model->forward(x);
  ASSERT_EQ(y.shape(), Shape({batch, 10}));
  ASSERT_TRUE(all_finite(y));
  if (!c.backward) return;

  nn::zero_grad(*model);
  Tensor dx = model->backward(random_tensor(y.shape(), rng));
  EXPECT_EQ(dx.shape(), x.shape());
  EXPECT_TRUE(all_finite(dx));
  for (auto& np : nn::named_parameters(*model)) {
    const Tensor& g = np.param->grad;
    double norm = 0;
    for (int64_t i = 0; i < g.numel(); ++i) norm += std::abs(g[i]);
    EXPECT_TRUE(std::isfinite(norm) && norm > 0) << np.path << " got no gradient";
  }
}

// resnet50 and vit-s4 run one geometry each (the other only changes the stem conv's input
// channels and the number of patches, which resnet18 and vit-tiny cover in both geometries).
INSTANTIATE_TEST_SUITE_P(
    Models, EveryModel,
    ::testing::Values(ModelCase{"mlp", 1, 28, 235146, true}, ModelCase{"mlp", 3, 32, 820874, true},
                      ModelCase{"cnn", 1, 28, 421738, true}, ModelCase{"cnn", 3, 32, 545194, true},
                      ModelCase{"resnet18", 1, 28, 11172810, true, kResNet18Paths, kResNet18Absent},
                      ModelCase{"resnet18", 3, 32, 11173962, true},
                      ModelCase{"vit-tiny", 1, 28, 204938, true},
                      ModelCase{"vit-tiny", 3, 32, 207946, true, kVitPaths},
                      ModelCase{"resnet50", 3, 32, 23520842, false, kResNet50Paths},
                      ModelCase{"vit-s4", 1, 28, 21323530, false, kVitPaths}),
    case_name);

TEST(ModelPaths, BottleneckUsesTorchvisionNames) {
  Rng rng(0);
  auto block = models::make_bottleneck(64, 64, 1, rng);  // layer1.0 of resnet50: 64 -> 256
  EXPECT_EQ(block->type(), "Bottleneck");
  EXPECT_EQ(
      parameter_paths(*block),
      (std::set<std::string>{"conv1.weight", "bn1.weight", "bn1.bias", "conv2.weight", "bn2.weight",
                             "bn2.bias", "conv3.weight", "bn3.weight", "bn3.bias",
                             "downsample.0.weight", "downsample.1.weight", "downsample.1.bias"}));
}

TEST(ModelPaths, VitExposesProductLayersByPath) {
  Rng rng(0);
  auto vit = models::make_model("vit-tiny", 3, 32, 10, rng);
  // The offload policy finds product layers by path.
  std::set<std::string> product_layers;
  for (auto& nm : nn::named_modules(*vit))
    if (nm.module->has_products()) product_layers.insert(nm.path);
  for (const char* path :
       {"patch_embed.proj", "blocks.1.attn", "blocks.1.attn.qkv", "blocks.1.mlp.fc1", "head"})
    EXPECT_TRUE(product_layers.count(path)) << path;
}

TEST(ModelFactory, UnknownNameListsTheValidOnes) {
  Rng rng(0);
  try {
    models::make_model("resnet19", 3, 32, 10, rng);
    FAIL() << "expected an exception";
  } catch (const std::invalid_argument& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("resnet19"), std::string::npos) << msg;
    for (const auto& name : models::model_names())
      EXPECT_NE(msg.find(name), std::string::npos) << msg;
  }
}

TEST(ModelFactory, RejectsGeometryTheModelCannotTake) {
  Rng rng(0);
  EXPECT_THROW(models::make_model("vit-tiny", 3, 30, 10, rng), std::invalid_argument);  // patch 4
  EXPECT_THROW(models::make_model("cnn", 0, 28, 10, rng), std::invalid_argument);
  EXPECT_THROW(models::make_model("mlp", 1, 28, 0, rng), std::invalid_argument);
}

TEST(ModelFactory, SameSeedGivesSameWeights) {
  Rng a(42), b(42);
  auto m1 = models::make_model("vit-tiny", 1, 28, 10, a);
  auto m2 = models::make_model("vit-tiny", 1, 28, 10, b);
  auto p1 = nn::named_parameters(*m1), p2 = nn::named_parameters(*m2);
  ASSERT_EQ(p1.size(), p2.size());
  for (size_t i = 0; i < p1.size(); ++i)
    for (int64_t j = 0; j < p1[i].param->value.numel(); ++j)
      ASSERT_EQ(p1[i].param->value[j], p2[i].param->value[j]) << p1[i].path;
}

TEST(NamedSequential, RejectsDuplicateAndDottedNames) {
  models::NamedSequential s;
  s.emplace<nn::ReLU>("relu");
  EXPECT_THROW(s.emplace<nn::ReLU>("relu"), std::invalid_argument);
  EXPECT_THROW(s.emplace<nn::ReLU>("a.b"), std::invalid_argument);
  EXPECT_EQ(s.size(), 1u);
}

// Finite-difference checks of the model-specific modules (the layers have their own tests).
TEST(ModelModulesGradients, PatchEmbedMatchesFiniteDifferences) {
  Rng rng(1);
  models::PatchEmbed m(2, 8, 4, 6, rng);
  Tensor x = random_tensor({2, 2, 8, 8}, rng);
  EXPECT_EQ(m.forward(x).shape(), Shape({2, 4, 6}));
  testing::expect_gradients_match(m, x);
}

TEST(ModelModulesGradients, PatchEmbedOrdersTokensRowMajorOverPatches) {
  // A 1x1 "patch" conv with identity weights turns pixels into tokens: token t of image b must be
  // pixel (t / W, t % W), as timm's flatten(2).transpose(1, 2).
  Rng rng(1);
  models::PatchEmbed m(2, 3, 1, 2, rng);
  Tensor& w = m.proj().weight().value;  // [2, 2, 1, 1]
  w.zero();
  w[0] = w[3] = 1.0f;
  m.proj().bias().value.zero();
  Tensor x = random_tensor({1, 2, 3, 3}, rng);
  Tensor y = m.forward(x);
  for (int64_t t = 0; t < 9; ++t)
    for (int64_t d = 0; d < 2; ++d) EXPECT_EQ(y[t * 2 + d], x[d * 9 + t]);
}

TEST(ModelModulesGradients, PositionEmbeddingMatchesFiniteDifferences) {
  Rng rng(2);
  models::PositionEmbedding m(4, 6, rng);
  testing::expect_gradients_match(m, random_tensor({3, 4, 6}, rng));
}

TEST(ModelModulesGradients, TokenMeanPoolMatchesFiniteDifferences) {
  Rng rng(3);
  models::TokenMeanPool m;
  Tensor x = random_tensor({2, 5, 3}, rng);
  Tensor y = m.forward(x);
  ASSERT_EQ(y.shape(), Shape({2, 3}));
  EXPECT_NEAR(y[4], (x[15 + 1] + x[18 + 1] + x[21 + 1] + x[24 + 1] + x[27 + 1]) / 5, 1e-6);
  testing::expect_gradients_match(m, x);
}

// Overfitting 8 random samples with SGD (momentum 0.9): the loss must fall well below its start.
struct OverfitCase {
  const char* name;
  float lr;
};

class Overfit : public ::testing::TestWithParam<OverfitCase> {};

TEST_P(Overfit, SgdStepsReduceTheLossOnATinyBatch) {
  Rng rng(5);
  auto model = models::make_model(GetParam().name, 1, 28, 10, rng);
  Tensor x = random_tensor({8, 1, 28, 28}, rng);
  const std::vector<int32_t> labels = {0, 1, 2, 3, 4, 5, 6, 7};
  nn::CrossEntropyLoss loss;
  auto params = nn::named_parameters(*model);
  std::vector<Tensor> velocity;
  for (auto& np : params) velocity.push_back(Tensor::zeros(np.param->value.shape()));
  float first = 0, last = 0;
  for (int step = 0; step < 20; ++step) {
    nn::zero_grad(*model);
    last = loss.forward(model->forward(x), labels);
    if (step == 0) first = last;
    model->backward(loss.backward());
    for (size_t k = 0; k < params.size(); ++k) {
      float* w = params[k].param->value.data();
      const float* g = params[k].param->grad.data();
      float* v = velocity[k].data();
      for (int64_t i = 0; i < velocity[k].numel(); ++i) {
        v[i] = 0.9f * v[i] + g[i];
        w[i] -= GetParam().lr * v[i];
      }
    }
  }
  EXPECT_NEAR(first, std::log(10.0f), 0.5f) << "an untrained model is near chance";
  EXPECT_LT(last, 0.3f * first) << "first " << first << ", last " << last;
}

INSTANTIATE_TEST_SUITE_P(Models, Overfit,
                         ::testing::Values(OverfitCase{"cnn", 0.01f},
                                           OverfitCase{"vit-tiny", 0.1f}),
                         [](const auto& info) {
                           std::string s = info.param.name;
                           for (char& c : s)
                             if (c == '-') c = '_';
                           return s;
                         });

}  // namespace
}  // namespace tempo
