#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <vector>

#include "gradcheck.h"
#include "master/nn/activations.h"
#include "master/nn/dropout.h"
#include "master/nn/flatten.h"
#include "master/nn/layernorm.h"
#include "master/nn/linear.h"
#include "master/nn/loss.h"
#include "master/nn/residual.h"
#include "master/nn/vec_math.h"

namespace tempo {
namespace {

using testing::closeness;
using testing::expect_gradients_match;
using testing::random_tensor;

TEST(VecMath, ExpMatchesLibmWithinTwoUlpAndHandlesRangeEnds) {
  double worst = 0;
  for (int i = 0; i <= 200000; ++i) {
    const float x = -87.0f + 175.0f * static_cast<float>(i) / 200000.0f;
    const double ref = std::exp(double(x));
    worst = std::max(worst, std::abs(double(nn::vec::exp(x)) - ref) / ref);
  }
  EXPECT_LT(worst, 2.4e-7);  // 2 ulp of float
  EXPECT_EQ(nn::vec::exp(-100.0f), 0.0f);
  EXPECT_EQ(nn::vec::exp(-INFINITY), 0.0f);
  EXPECT_EQ(nn::vec::exp(0.0f), 1.0f);
  EXPECT_TRUE(std::isnan(nn::vec::exp(NAN)));
}

TEST(VecMath, ErfMatchesLibmWithinOneMillionth) {
  double worst = 0;
  for (int i = 0; i <= 100000; ++i) {
    const float x = -6.0f + 12.0f * static_cast<float>(i) / 100000.0f;
    worst = std::max(worst, std::abs(double(nn::vec::erf(x)) - std::erf(double(x))));
  }
  EXPECT_LT(worst, 1e-6);
}

TEST(ReLU, ForwardClampsNegativesAndGradientMatchesAwayFromKink) {
  Rng rng(1);
  Tensor x = random_tensor({4, 3, 5}, rng);
  // Keep every input at least 0.1 from the kink: the finite-difference step is 0.01.
  for (int64_t i = 0; i < x.numel(); ++i) x[i] += x[i] >= 0 ? 0.1f : -0.1f;
  nn::ReLU relu;
  Tensor y = relu.forward(x);
  for (int64_t i = 0; i < x.numel(); ++i) EXPECT_EQ(y[i], x[i] > 0 ? x[i] : 0.0f);
  expect_gradients_match(relu, x);
}

TEST(GELU, ForwardMatchesExactErfFormulaAndGradientMatches) {
  Rng rng(2);
  Tensor x = random_tensor({3, 50}, rng, 2.0f);
  nn::GELU gelu;
  Tensor y = gelu.forward(x);
  for (int64_t i = 0; i < x.numel(); ++i) {
    const double v = x[i];
    EXPECT_NEAR(y[i], 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))), 1e-6) << "x=" << v;
  }
  expect_gradients_match(gelu, x);
}

TEST(GELU, LargeTensorTakesTheParallelPathWithTheSameValues) {
  Rng rng(3);
  Tensor x = random_tensor({300, 256}, rng, 3.0f);
  nn::GELU gelu;
  Tensor y = gelu.forward(x);
  Tensor dy = random_tensor(x.shape(), rng);
  Tensor dx = gelu.backward(dy);
  for (int64_t i = 0; i < x.numel(); i += 97) {
    const double v = x[i];
    const double cdf = 0.5 * (1 + std::erf(v / std::sqrt(2.0)));
    const double pdf = std::exp(-0.5 * v * v) / std::sqrt(2 * M_PI);
    EXPECT_NEAR(y[i], v * cdf, 2e-6);
    EXPECT_NEAR(dx[i], dy[i] * (cdf + v * pdf), 2e-6 * (1 + std::abs(dy[i])));
  }
}

TEST(LayerNorm, NormalisesEachRowAndGradientMatches) {
  Rng rng(4);
  nn::LayerNorm ln(8);
  Tensor x = random_tensor({2, 3, 8}, rng, 3.0f);
  for (int64_t i = 0; i < x.numel(); ++i) x[i] += 5.0f;  // a large mean must not hurt
  Tensor y = ln.forward(x);
  for (int64_t r = 0; r < 6; ++r) {
    double mean = 0, var = 0;
    for (int j = 0; j < 8; ++j) mean += y[r * 8 + j] / 8.0;
    for (int j = 0; j < 8; ++j) var += (y[r * 8 + j] - mean) * (y[r * 8 + j] - mean) / 8.0;
    EXPECT_NEAR(mean, 0.0, 1e-5);
    EXPECT_NEAR(var, 1.0, 1e-3);  // 1 - eps/var
  }
  for (int j = 0; j < 8; ++j) {
    ln.weight().value[j] = 1.0f + 0.3f * static_cast<float>(rng.normal());
    ln.bias().value[j] = 0.3f * static_cast<float>(rng.normal());
  }
  expect_gradients_match(ln, x);
}

TEST(LayerNorm, ParallelBackwardAccumulatesParameterGradients) {
  Rng rng(5);
  nn::LayerNorm ln(64);
  Tensor x = random_tensor({1024, 64}, rng);
  ln.forward(x);
  Tensor dy = random_tensor(x.shape(), rng);
  ln.backward(dy);
  // dbias = column sums of dy, whatever the thread split; a second backward adds it again.
  ln.forward(x);
  ln.backward(dy);
  for (int j = 0; j < 64; ++j) {
    double s = 0;
    for (int r = 0; r < 1024; ++r) s += dy[r * 64 + j];
    EXPECT_NEAR(ln.bias().grad[j], 2 * s, 1e-3);
  }
}

TEST(LayerNorm, RejectsWrongFeatureCountAndBackwardWithoutForward) {
  nn::LayerNorm ln(8);
  EXPECT_THROW(ln.forward(Tensor::zeros({2, 7})), std::invalid_argument);
  EXPECT_THROW(ln.backward(Tensor::zeros({2, 8})), std::logic_error);
}

TEST(Dropout, TrainModeGradientMatchesWithARepeatedMask) {
  Rng rng(6), mask_rng(0);
  nn::Dropout drop(0.4f, mask_rng);
  Tensor x = random_tensor({3, 7}, rng);
  expect_gradients_match(drop, x, {}, [&] { mask_rng.reseed(42); });
}

TEST(Dropout, EvalModeIsTheIdentity) {
  Rng rng(7), mask_rng(1);
  nn::Dropout drop(0.5f, mask_rng);
  drop.train(false);
  Tensor x = random_tensor({4, 9}, rng);
  Tensor y = drop.forward(x);
  EXPECT_EQ(y.data(), x.data());
  Tensor dy = random_tensor(x.shape(), rng);
  EXPECT_EQ(drop.backward(dy).data(), dy.data());
}

TEST(Dropout, DropsAboutPAndScalesTheRestByInverseKeepRate) {
  Rng rng(8), mask_rng(2);
  const float p = 0.3f;
  nn::Dropout drop(p, mask_rng);
  Tensor x = Tensor::filled({200, 500}, 2.0f);
  Tensor y = drop.forward(x);
  int64_t zeros = 0;
  for (int64_t i = 0; i < y.numel(); ++i) {
    if (y[i] == 0.0f)
      ++zeros;
    else
      EXPECT_FLOAT_EQ(y[i], 2.0f / (1.0f - p));
  }
  // 100000 Bernoulli(0.3) draws: standard deviation 0.0014, so 0.005 is over 3 sigma.
  EXPECT_NEAR(double(zeros) / double(y.numel()), p, 0.005);
  Tensor y2 = drop.forward(x);
  int64_t differ = 0;
  for (int64_t i = 0; i < y.numel(); ++i) differ += y[i] != y2[i];
  EXPECT_GT(differ, y.numel() / 4) << "consecutive forwards must draw fresh masks";
}

TEST(Dropout, RejectsProbabilityOutsideUnitInterval) {
  Rng rng(0);
  EXPECT_THROW(nn::Dropout(-0.1f, rng), std::invalid_argument);
  EXPECT_THROW(nn::Dropout(1.5f, rng), std::invalid_argument);
}

TEST(Flatten, KeepsBatchSharesStorageAndGradientMatches) {
  Rng rng(9);
  nn::Flatten flat;
  Tensor x = random_tensor({2, 3, 4, 5}, rng);
  Tensor y = flat.forward(x);
  EXPECT_EQ(y.shape(), Shape({2, 60}));
  EXPECT_EQ(y.data(), x.data());
  Tensor dx = flat.backward(y);
  EXPECT_EQ(dx.shape(), x.shape());
  expect_gradients_match(flat, x);
}

TEST(Residual, IdentityShortcutAddsInputAndGradientMatches) {
  Rng rng(10);
  nn::Residual res(std::make_unique<nn::Linear>(6, 6, rng));
  Tensor x = random_tensor({4, 6}, rng);
  Tensor y = res.forward(x);
  nn::Linear& body = static_cast<nn::Linear&>(res.body());
  for (int r = 0; r < 4; ++r)
    for (int j = 0; j < 6; ++j) {
      double s = body.bias().value[j] + x[r * 6 + j];
      for (int i = 0; i < 6; ++i) s += x[r * 6 + i] * body.weight().value[i * 6 + j];
      EXPECT_NEAR(y[r * 6 + j], s, 1e-5);
    }
  expect_gradients_match(res, x);
}

TEST(Residual, ProjectionShortcutGradientMatches) {
  Rng rng(11);
  nn::Residual res(std::make_unique<nn::Linear>(5, 3, rng),
                   std::make_unique<nn::Linear>(5, 3, rng));
  EXPECT_EQ(nn::named_parameters(res).size(), 4u);
  expect_gradients_match(res, random_tensor({4, 5}, rng));
}

TEST(Residual, RejectsBodyAndShortcutOfDifferentShapes) {
  Rng rng(12);
  nn::Residual res(std::make_unique<nn::Linear>(5, 3, rng));
  EXPECT_THROW(res.forward(Tensor::zeros({2, 5})), std::invalid_argument);
}

TEST(CrossEntropyLoss, MatchesHandComputedValues) {
  // logits [1, 2, 3] label 2: loss = log(1 + e^-1 + e^-2) = 0.4076059644.
  // With ε = 0.1: 0.9·0.4076059644 + (0.1/3)·(2.4076.. + 1.4076.. + 0.4076..) = 0.5076059644.
  Tensor logits({2, 3});
  const float vals[] = {1, 2, 3, 1, 2, 3};
  std::copy(vals, vals + 6, logits.data());
  nn::CrossEntropyLoss plain, smooth(0.1f);
  EXPECT_NEAR(plain.forward(logits, {2, 2}), 0.4076059644, 1e-6);
  EXPECT_EQ(plain.correct(), 2);
  EXPECT_NEAR(smooth.forward(logits, {2, 0}), 0.5 * (0.5076059644 + 2.3076059644), 1e-6);
  EXPECT_EQ(smooth.correct(), 1);
  // dL/dz = (softmax - target) / N; softmax([1,2,3]) = [0.0900306, 0.2447285, 0.6652410].
  Tensor g = plain.backward();
  EXPECT_NEAR(g[0], 0.0900306 / 2, 1e-6);
  EXPECT_NEAR(g[2], (0.6652410 - 1) / 2, 1e-6);
}

void expect_loss_gradient_matches(float smoothing) {
  Rng rng(13);
  Tensor logits = random_tensor({5, 7}, rng, 2.0f);
  logits[3] += 40.0f;  // a large logit must not overflow
  const std::vector<int32_t> labels = {0, 6, 3, 3, 1};
  nn::CrossEntropyLoss loss(smoothing);
  loss.forward(logits, labels);
  Tensor g = loss.backward();
  const float eps = 1e-2f;
  for (int64_t i = 0; i < logits.numel(); ++i) {
    const float saved = logits[i];
    logits[i] = saved + eps;
    const double up = loss.forward(logits, labels);
    logits[i] = saved - eps;
    const double down = loss.forward(logits, labels);
    logits[i] = saved;
    EXPECT_NEAR(g[i], (up - down) / (2 * eps), 2e-4) << "smoothing " << smoothing << " at " << i;
  }
}

TEST(CrossEntropyLoss, GradientMatchesFiniteDifferences) { expect_loss_gradient_matches(0.0f); }

TEST(CrossEntropyLoss, GradientWithLabelSmoothingMatchesFiniteDifferences) {
  expect_loss_gradient_matches(0.2f);
}

TEST(CrossEntropyLoss, LargeBatchTakesTheParallelPathWithTheSameLoss) {
  Rng rng(14);
  Tensor logits = random_tensor({512, 100}, rng);
  std::vector<int32_t> labels(512);
  for (auto& l : labels) l = static_cast<int32_t>(rng.below(100));
  nn::CrossEntropyLoss loss(0.1f);
  double ref = 0;
  for (int i = 0; i < 512; ++i) {
    double mx = -1e30, s = 0, zs = 0;
    for (int j = 0; j < 100; ++j) mx = std::max(mx, double(logits[i * 100 + j]));
    for (int j = 0; j < 100; ++j)
      s += std::exp(logits[i * 100 + j] - mx), zs += logits[i * 100 + j];
    ref += mx + std::log(s) - 0.9 * logits[i * 100 + labels[i]] - 0.001 * zs;
  }
  EXPECT_NEAR(loss.forward(logits, labels), ref / 512, 1e-5);
}

TEST(CrossEntropyLoss, RejectsBadLabelsAndShapes) {
  nn::CrossEntropyLoss loss;
  Tensor logits = Tensor::zeros({2, 3});
  EXPECT_THROW(loss.forward(logits, {0, 3}), std::invalid_argument);
  EXPECT_THROW(loss.forward(logits, {-1, 0}), std::invalid_argument);
  EXPECT_THROW(loss.forward(logits, {0}), std::invalid_argument);
  EXPECT_THROW(loss.forward(Tensor::zeros({2, 3, 1}), {0, 0}), std::invalid_argument);
  EXPECT_THROW(nn::CrossEntropyLoss().backward(), std::logic_error);
}

}  // namespace
}  // namespace tempo
