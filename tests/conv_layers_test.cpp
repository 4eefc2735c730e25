// Gradient checks and reference values for Linear, Conv2d (both plain backends), BatchNorm2d and
// the pooling layers, plus their shape errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "gradcheck.h"
#include "master/nn/batchnorm2d.h"
#include "master/nn/conv2d.h"
#include "master/nn/linear.h"
#include "master/nn/plain_compute.h"
#include "master/nn/plain_conv_backend.h"
#include "master/nn/pooling.h"

namespace tempo {
namespace {

using nn::ConvBackend;
using testing::closeness;
using testing::expect_gradients_match;
using testing::random_tensor;

/// PlainCompute with the convolution pinned to one backend, so Conv2d can be checked on each.
class PinnedConvCompute final : public nn::Compute {
 public:
  explicit PinnedConvCompute(ConvBackend b) : backend_(b) {}
  const char* name() const override { return "pinned"; }
  Tensor matmul(const Tensor& x, const Tensor& w,
                std::unique_ptr<nn::SavedProduct>* saved) override {
    return plain_.matmul(x, w, saved);
  }
  void matmul_backward(const Tensor& dy, std::unique_ptr<nn::SavedProduct>* saved, Tensor* dx,
                       Tensor* dw) override {
    plain_.matmul_backward(dy, saved, dx, dw);
  }
  Tensor conv2d(const Tensor& x, const Tensor& w, const nn::ConvGeometry& g,
                std::unique_ptr<nn::SavedProduct>* saved) override {
    return nn::plain_conv2d(backend_, x, w, g, saved);
  }
  void conv2d_backward(const Tensor& dy, std::unique_ptr<nn::SavedProduct>* saved, Tensor* dx,
                       Tensor* dw) override {
    nn::plain_conv2d_backward(dy, saved, dx, dw);
  }
  Tensor batched_matmul(const Tensor& a, const Tensor& b, bool ta, bool tb) override {
    return plain_.batched_matmul(a, b, ta, tb);
  }

 private:
  ConvBackend backend_;
  nn::PlainCompute plain_;
};

/// Direct convolution in double precision: the reference for both backends.
Tensor naive_conv(const Tensor& x, const Tensor& w, const nn::ConvGeometry& g) {
  const int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), wd = x.dim(3);
  const int64_t o = w.dim(0), k = w.dim(2);
  const int64_t oh = g.out_h(h, k), ow = g.out_w(wd, k);
  Tensor y({n, o, oh, ow});
  for (int64_t b = 0; b < n; ++b)
    for (int64_t f = 0; f < o; ++f)
      for (int64_t i = 0; i < oh; ++i)
        for (int64_t j = 0; j < ow; ++j) {
          double s = 0;
          for (int64_t ch = 0; ch < c; ++ch)
            for (int64_t u = 0; u < k; ++u)
              for (int64_t v = 0; v < k; ++v) {
                const int64_t yy = i * g.stride_h - g.pad_h + u, xx = j * g.stride_w - g.pad_w + v;
                if (yy < 0 || yy >= h || xx < 0 || xx >= wd) continue;
                s += double(x[((b * c + ch) * h + yy) * wd + xx]) *
                     w[((f * c + ch) * k + u) * k + v];
              }
          y[((b * o + f) * oh + i) * ow + j] = static_cast<float>(s);
        }
  return y;
}

TEST(LinearLayer, GradientsMatchFiniteDifferences) {
  Rng rng(1);
  nn::Linear lin(5, 4, rng);
  expect_gradients_match(lin, random_tensor({3, 5}, rng));
}

struct ConvCase {
  int64_t c, o, k, stride, pad, h, w;
  bool bias;
};

const ConvCase kConvCases[] = {
    {3, 4, 3, 1, 1, 5, 7, true},  {2, 3, 3, 2, 1, 7, 5, false}, {3, 2, 3, 1, 0, 6, 5, true},
    {4, 3, 1, 2, 0, 6, 6, false},  // 1x1 stride-2 shortcut on an even size
    {3, 5, 1, 1, 0, 3, 5, true},  {2, 2, 3, 2, 0, 7, 7, true},
};

class ConvBackendTest : public ::testing::TestWithParam<ConvBackend> {};

TEST_P(ConvBackendTest, Conv2dGradientsMatchFiniteDifferences) {
  PinnedConvCompute compute(GetParam());
  Rng rng(2);
  for (const ConvCase& cc : kConvCases) {
    SCOPED_TRACE(::testing::Message()
                 << "c=" << cc.c << " o=" << cc.o << " k=" << cc.k << " s=" << cc.stride
                 << " p=" << cc.pad << " " << cc.h << "x" << cc.w << " bias=" << cc.bias);
    nn::Conv2d conv(cc.c, cc.o, cc.k, rng, cc.stride, cc.pad, cc.bias);
    conv.set_compute(&compute);
    if (cc.bias)
      for (int64_t i = 0; i < cc.o; ++i) conv.bias().value[i] = rng.uniform(-1.0f, 1.0f);
    expect_gradients_match(conv, random_tensor({2, cc.c, cc.h, cc.w}, rng), {.max_coords = 16});
  }
}

TEST_P(ConvBackendTest, ForwardMatchesDirectConvolution) {
  Rng rng(3);
  for (const ConvCase& cc : kConvCases) {
    const nn::ConvGeometry g{cc.stride, cc.stride, cc.pad, cc.pad};
    Tensor x = random_tensor({3, cc.c, cc.h, cc.w}, rng),
           w = random_tensor({cc.o, cc.c, cc.k, cc.k}, rng);
    Tensor y = nn::plain_conv2d(GetParam(), x, w, g, nullptr);
    EXPECT_LT(closeness(y, naive_conv(x, w, g), 1e-4, 1e-4), 1.0);
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, ConvBackendTest,
                         ::testing::Values(ConvBackend::kIm2col, ConvBackend::kOnednn),
                         [](const auto& info) { return nn::conv_backend_name(info.param); });

TEST(PlainConv, OnednnAndIm2colAgreeForwardAndBackward) {
  Rng rng(4);
  const ConvCase cases[] = {{16, 8, 3, 1, 1, 9, 9, false},
                            {8, 16, 3, 2, 1, 10, 10, false},
                            {16, 32, 1, 2, 0, 8, 8, false},
                            {3, 16, 3, 1, 1, 8, 8, false}};
  for (const ConvCase& cc : cases) {
    const nn::ConvGeometry g{cc.stride, cc.stride, cc.pad, cc.pad};
    Tensor x = random_tensor({4, cc.c, cc.h, cc.w}, rng);
    Tensor w = random_tensor({cc.o, cc.c, cc.k, cc.k}, rng, 0.2f);
    std::unique_ptr<nn::SavedProduct> s1, s2;
    Tensor y1 = nn::plain_conv2d(ConvBackend::kIm2col, x, w, g, &s1);
    Tensor y2 = nn::plain_conv2d(ConvBackend::kOnednn, x, w, g, &s2);
    EXPECT_LT(closeness(y2, y1, 1e-4, 1e-4), 1.0);
    Tensor dy = random_tensor(y1.shape(), rng), dx1, dw1, dx2, dw2;
    nn::plain_conv2d_backward(dy, &s1, &dx1, &dw1);
    nn::plain_conv2d_backward(dy, &s2, &dx2, &dw2);
    EXPECT_EQ(s1, nullptr);
    EXPECT_EQ(s2, nullptr);
    EXPECT_LT(closeness(dx2, dx1, 1e-4, 1e-4), 1.0);
    EXPECT_LT(closeness(dw2, dw1, 1e-3, 1e-4), 1.0);
  }
}

TEST(PlainConv, BackwardComputesOnlyWhatIsAsked) {
  Rng rng(5);
  const nn::ConvGeometry g{1, 1, 1, 1};
  Tensor x = random_tensor({2, 3, 5, 5}, rng), w = random_tensor({4, 3, 3, 3}, rng);
  for (ConvBackend b : {ConvBackend::kIm2col, ConvBackend::kOnednn}) {
    std::unique_ptr<nn::SavedProduct> s;
    Tensor y = nn::plain_conv2d(b, x, w, g, &s);
    Tensor dw;
    nn::plain_conv2d_backward(random_tensor(y.shape(), rng), &s, nullptr, &dw);
    EXPECT_EQ(dw.shape(), w.shape());
    EXPECT_EQ(s, nullptr);
  }
}

TEST(Conv2dLayer, RejectsWrongInputShapes) {
  Rng rng(6);
  nn::Conv2d conv(3, 4, 3, rng, 1, 0);
  EXPECT_THROW(conv.forward(Tensor({2, 5, 8, 8})), std::invalid_argument);  // channels
  EXPECT_THROW(conv.forward(Tensor({3, 8, 8})), std::invalid_argument);     // rank
  EXPECT_THROW(conv.forward(Tensor({1, 3, 2, 8})), std::invalid_argument);  // smaller than kernel
  EXPECT_THROW(conv.backward(Tensor({1, 4, 6, 6})), std::logic_error);      // no forward
  conv.forward(Tensor::zeros({1, 3, 8, 8}));
  EXPECT_THROW(conv.backward(Tensor({1, 4, 5, 6})), std::invalid_argument);
  EXPECT_THROW(nn::Conv2d(3, 4, 0, rng), std::invalid_argument);
}

TEST(Conv2dLayer, InitialisationIsKaimingFanOut) {
  Rng rng(7);
  nn::Conv2d conv(16, 64, 3, rng, 1, 1, /*bias=*/true);
  const Tensor& w = conv.weight().value;
  double s2 = 0;
  for (int64_t i = 0; i < w.numel(); ++i) s2 += double(w[i]) * w[i];
  EXPECT_NEAR(std::sqrt(s2 / double(w.numel())), std::sqrt(2.0 / (64 * 9)), 0.003);
  for (int64_t i = 0; i < 64; ++i) EXPECT_EQ(conv.bias().value[i], 0.0f);
}

TEST(Conv2dLayer, EvalForwardKeepsNothingForBackward) {
  Rng rng(8);
  nn::Conv2d conv(2, 3, 3, rng, 1, 1);
  conv.train(false);
  Tensor y = conv.forward(random_tensor({1, 2, 4, 4}, rng));
  EXPECT_THROW(conv.backward(y), std::logic_error);
}

TEST(BatchNorm2dLayer, TrainModeGradientsMatchFiniteDifferences) {
  Rng rng(9);
  nn::BatchNorm2d bn(3);
  for (int64_t i = 0; i < 3; ++i) {
    bn.weight().value[i] = rng.uniform(0.5f, 1.5f);
    bn.bias().value[i] = rng.uniform(-0.5f, 0.5f);
  }
  Tensor x = random_tensor({3, 3, 3, 4}, rng, 2.0f);
  for (int64_t i = 0; i < x.numel(); ++i) x[i] += 1.5f;  // a non-zero mean
  expect_gradients_match(bn, x);
}

TEST(BatchNorm2dLayer, RunningStatisticsFollowPyTorchFormulas) {
  Rng rng(10);
  nn::BatchNorm2d bn(2, 1e-5f, 0.1f);
  Tensor rm_expected = Tensor::zeros({2}), rv_expected = Tensor::filled({2}, 1.0f);
  for (int step = 0; step < 3; ++step) {
    Tensor x = random_tensor({4, 2, 3, 3}, rng, 3.0f);
    for (int64_t i = 0; i < x.numel(); ++i) x[i] += 10.0f;
    Tensor y = bn.forward(x);
    for (int64_t ch = 0; ch < 2; ++ch) {
      std::vector<double> v;
      for (int64_t b = 0; b < 4; ++b)
        for (int64_t i = 0; i < 9; ++i) v.push_back(x[(b * 2 + ch) * 9 + i]);
      const double mean = std::accumulate(v.begin(), v.end(), 0.0) / double(v.size());
      double ss = 0;
      for (double e : v) ss += (e - mean) * (e - mean);
      const double biased = ss / double(v.size()), unbiased = ss / double(v.size() - 1);
      rm_expected[ch] = static_cast<float>(0.9 * rm_expected[ch] + 0.1 * mean);
      rv_expected[ch] = static_cast<float>(0.9 * rv_expected[ch] + 0.1 * unbiased);
      // Training normalises with the batch's biased variance.
      for (int64_t b = 0; b < 4; ++b)
        for (int64_t i = 0; i < 9; ++i) {
          const int64_t at = (b * 2 + ch) * 9 + i;
          EXPECT_NEAR(y[at], (x[at] - mean) / std::sqrt(biased + 1e-5), 1e-4);
        }
    }
    bn.backward(Tensor::zeros(x.shape()));
  }
  EXPECT_LT(closeness(bn.running_mean(), rm_expected, 1e-5, 1e-5), 1.0);
  EXPECT_LT(closeness(bn.running_var(), rv_expected, 1e-5, 1e-5), 1.0);
}

TEST(BatchNorm2dLayer, EvalForwardUsesRunningStatistics) {
  Rng rng(11);
  nn::BatchNorm2d bn(2);
  bn.running_mean()[0] = 1.0f;
  bn.running_mean()[1] = -2.0f;
  bn.running_var()[0] = 4.0f;
  bn.running_var()[1] = 0.25f;
  bn.weight().value[1] = 3.0f;
  bn.bias().value[0] = 0.5f;
  bn.train(false);
  Tensor x = random_tensor({2, 2, 2, 3}, rng);
  Tensor y = bn.forward(x);
  const float g[2] = {1.0f, 3.0f}, b[2] = {0.5f, 0.0f}, m[2] = {1.0f, -2.0f}, v[2] = {4.0f, 0.25f};
  for (int64_t i = 0; i < x.numel(); ++i) {
    const int64_t ch = (i / 6) % 2;
    EXPECT_NEAR(y[i], (x[i] - m[ch]) / std::sqrt(v[ch] + 1e-5f) * g[ch] + b[ch], 1e-5);
  }
  EXPECT_EQ(bn.running_mean()[0], 1.0f);  // eval leaves the statistics alone
  EXPECT_EQ(bn.running_var()[1], 0.25f);
}

TEST(BatchNorm2dLayer, RejectsWrongShapesAndSingleValueBatches) {
  nn::BatchNorm2d bn(3);
  EXPECT_THROW(bn.forward(Tensor({2, 4, 3, 3})), std::invalid_argument);
  EXPECT_THROW(bn.forward(Tensor({2, 3, 9})), std::invalid_argument);
  EXPECT_THROW(bn.forward(Tensor::zeros({1, 3, 1, 1})), std::invalid_argument);
  EXPECT_THROW(bn.backward(Tensor({2, 3, 3, 3})), std::logic_error);
  bn.forward(Tensor::zeros({2, 3, 2, 2}));
  EXPECT_THROW(bn.backward(Tensor({2, 3, 2, 3})), std::invalid_argument);
}

/// Distinct values at least 0.1 apart, so a finite-difference step never changes a max.
Tensor well_separated(const Shape& s, Rng& rng) {
  Tensor t(s);
  std::vector<int64_t> order(static_cast<size_t>(t.numel()));
  std::iota(order.begin(), order.end(), 0);
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);
  for (int64_t i = 0; i < t.numel(); ++i)
    t[i] = 0.1f * static_cast<float>(order[static_cast<size_t>(i)]) - 2.0f;
  return t;
}

TEST(MaxPool2dLayer, GradientsMatchFiniteDifferences) {
  Rng rng(12);
  nn::MaxPool2d stem(3, 2, 1), plain(2, 2);
  expect_gradients_match(stem, well_separated({2, 2, 7, 6}, rng));
  expect_gradients_match(plain, well_separated({1, 3, 5, 5}, rng));
}

TEST(MaxPool2dLayer, ForwardTakesWindowMaximaWithNegativeInfinityPadding) {
  nn::MaxPool2d pool(3, 2, 1);
  Tensor x({1, 1, 3, 3});
  for (int64_t i = 0; i < 9; ++i) x[i] = -10.0f - static_cast<float>(i);  // all negative
  Tensor y = pool.forward(x);
  ASSERT_EQ(y.shape(), Shape({1, 1, 2, 2}));
  EXPECT_EQ(y[0], -10.0f);  // window rows 0..1, cols 0..1
  EXPECT_EQ(y[1], -11.0f);  // rows 0..1, cols 1..2
  EXPECT_EQ(y[2], -13.0f);
  EXPECT_EQ(y[3], -14.0f);
  Tensor dx = pool.backward(Tensor::filled(y.shape(), 1.0f));
  EXPECT_EQ(dx[0], 1.0f);
  EXPECT_EQ(dx[4], 1.0f);
  EXPECT_EQ(dx[8], 0.0f);
}

TEST(AvgPool2dLayer, GradientsMatchFiniteDifferences) {
  Rng rng(13);
  nn::AvgPool2d padded(3, 2, 1), plain(2, 2);
  expect_gradients_match(padded, random_tensor({2, 2, 7, 6}, rng));
  expect_gradients_match(plain, random_tensor({1, 3, 5, 5}, rng));
}

TEST(AvgPool2dLayer, PaddingCountsInTheDivisor) {
  nn::AvgPool2d pool(2, 1, 1);
  Tensor y = pool.forward(Tensor::filled({1, 1, 2, 2}, 1.0f));
  ASSERT_EQ(y.shape(), Shape({1, 1, 3, 3}));
  const float expected[9] = {0.25f, 0.5f, 0.25f, 0.5f, 1.0f, 0.5f, 0.25f, 0.5f, 0.25f};
  for (int i = 0; i < 9; ++i) EXPECT_FLOAT_EQ(y[i], expected[i]);
}

TEST(GlobalAvgPool2dLayer, AveragesEachPlaneAndSpreadsTheGradient) {
  Rng rng(14);
  nn::GlobalAvgPool2d gap;
  expect_gradients_match(gap, random_tensor({2, 3, 3, 5}, rng));
  Tensor x({1, 2, 2, 2});
  for (int64_t i = 0; i < 8; ++i) x[i] = static_cast<float>(i);
  Tensor y = gap.forward(x);
  ASSERT_EQ(y.shape(), Shape({1, 2}));
  EXPECT_FLOAT_EQ(y[0], 1.5f);
  EXPECT_FLOAT_EQ(y[1], 5.5f);
}

TEST(PoolingLayers, RejectWrongShapesAndConfigurations) {
  nn::MaxPool2d mp(3, 2, 1);
  nn::AvgPool2d ap(2, 2);
  nn::GlobalAvgPool2d gap;
  EXPECT_THROW(mp.forward(Tensor({2, 8, 8})), std::invalid_argument);
  EXPECT_THROW(ap.forward(Tensor({1, 1, 1, 4})), std::invalid_argument);  // smaller than kernel
  EXPECT_THROW(gap.forward(Tensor({2, 8})), std::invalid_argument);
  EXPECT_THROW(nn::MaxPool2d(3, 2, 2), std::invalid_argument);  // padding above kernel/2
  EXPECT_THROW(nn::AvgPool2d(2, 0), std::invalid_argument);
  EXPECT_THROW(mp.backward(Tensor({1, 1, 2, 2})), std::logic_error);
  Tensor y = ap.forward(Tensor::zeros({1, 2, 4, 4}));
  EXPECT_THROW(ap.backward(Tensor({1, 2, 3, 2})), std::invalid_argument);
  gap.forward(Tensor::zeros({1, 2, 4, 4}));
  EXPECT_THROW(gap.backward(Tensor({1, 3})), std::invalid_argument);
}

}  // namespace
}  // namespace tempo
