// The offload engine end to end (PROTOCOL.md sections 2-4, 7): every operation kind of
// TempoCompute through an OffloadEngine and an EmbeddedWorker (CPU backend) against PlainCompute,
// the worker's handle cache, the placement policy, and worker errors.
//
// Tolerance. Scales are powers of two (the default), so blinding and unblinding are exact and a
// blinded product differs from the plain one only in the order of its floating-point sums. For a
// sum of k products, any order gives |fl(sum) - sum| <= gamma_k * sum|a_i||b_i| with
// gamma_k = k·u/(1 - k·u), u = 2^-24 (Higham, Accuracy and Stability, 3.1; FMA only tightens it).
// Both results carry such an error, so elementwise
//     |tempo - plain| <= 2·gamma_k · (|A|·|B|)
// where |A|·|B| is the same operation on absolute values (computed here with PlainCompute; its own
// rounding is a relative 1e-5 at most and covered by the 1.01 margin). k is the number of terms
// per output entry: matmul forward k, dX n, dW m; conv forward C·kh·kw, dX O·kh·kw (col2im adds
// at most kh·kw partial sums), dW N·H'·W'.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "master/core/tensor.h"
#include "master/models/named_sequential.h"
#include "master/nn/attention.h"
#include "master/nn/conv2d.h"
#include "master/nn/linear.h"
#include "master/nn/plain_compute.h"
#include "master/offload/offload_engine.h"
#include "master/offload/tempo_compute.h"
#include "worker/embedded_worker.h"

namespace tempo::offload {
namespace {

using ::testing::HasSubstr;

Tensor random_tensor(const Shape& s, std::mt19937& rng) {
  Tensor t(s);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = dist(rng);
  return t;
}

Tensor abs_of(const Tensor& t) {
  Tensor a(t.shape());
  for (int64_t i = 0; i < t.numel(); ++i) a[i] = std::abs(t[i]);
  return a;
}

/// |got - want| <= 2·gamma_k·bound elementwise (see the file comment), with a 1% margin.
void expect_within_sum_order_bound(const Tensor& got, const Tensor& want, const Tensor& bound,
                                   int64_t k, const std::string& what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  ASSERT_EQ(bound.shape(), want.shape()) << what;
  const double u = std::ldexp(1.0, -24);
  const double gamma = double(k) * u / (1.0 - double(k) * u);
  int64_t bad = 0;
  for (int64_t i = 0; i < got.numel(); ++i) {
    const double tol = 2.0 * gamma * double(bound[i]) * 1.01;
    if (!(std::abs(double(got[i]) - double(want[i])) <= tol) && ++bad <= 5)
      ADD_FAILURE() << what << " element " << i << ": tempo " << got[i] << ", plain " << want[i]
                    << ", allowed difference " << tol;
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << got.numel() << " elements out of bound";
}

/// One engine over one embedded CPU worker, as `tempo train --mode tempo` builds it.
class OffloadEngineTest : public ::testing::Test {
 protected:
  explicit OffloadEngineTest(worker::WorkerLimits limits = {}) : worker_(make_options(limits)) {}

  static worker::WorkerOptions make_options(worker::WorkerLimits limits) {
    worker::WorkerOptions o;
    o.backend = "cpu";
    o.threads = 2;
    o.limits = limits;
    return o;
  }

  worker::WorkerCounters counters() const { return worker_.counters(); }

  worker::EmbeddedWorker worker_;
  OffloadEngine engine_{worker_, OffloadPolicy{}};
  nn::PlainCompute plain_;
  std::mt19937 rng_{20241126};
};

TEST_F(OffloadEngineTest, MatmulForwardAndBackwardEqualPlainUpToSummationOrder) {
  const int64_t m = 37, k = 53, n = 29;  // odd sizes: no block or vector width divides them
  TempoCompute tempo(engine_, "fc", ConvMode::kPatch);
  const Tensor x = random_tensor({m, k}, rng_), w = random_tensor({k, n}, rng_);
  const Tensor dy = random_tensor({m, n}, rng_);

  std::unique_ptr<nn::SavedProduct> st, sp, sb;
  const Tensor yt = tempo.matmul(x, w, &st);
  const Tensor yp = plain_.matmul(x, w, &sp);
  const Tensor yb = plain_.matmul(abs_of(x), abs_of(w), &sb);
  expect_within_sum_order_bound(yt, yp, yb, k, "Y");

  Tensor dxt, dwt, dxp, dwp, dxb, dwb;
  tempo.matmul_backward(dy, &st, &dxt, &dwt);
  plain_.matmul_backward(dy, &sp, &dxp, &dwp);
  plain_.matmul_backward(abs_of(dy), &sb, &dxb, &dwb);
  expect_within_sum_order_bound(dxt, dxp, dxb, n, "dX");
  expect_within_sum_order_bound(dwt, dwp, dwb, m, "dW");
  EXPECT_EQ(st, nullptr) << "backward releases the saved product";
  EXPECT_EQ(counters().requests, 3u) << "forward, backward-data, backward-weights";
  EXPECT_EQ(counters().failed, 0u);
}

/// One conv case: shapes and geometry.
struct ConvCase {
  int64_t n, c, h, w, o, k, stride, pad;
  ConvMode mode;
};

std::string case_name(const ConvCase& cc) {
  return std::string(to_string(cc.mode)) + " N" + std::to_string(cc.n) + " C" +
         std::to_string(cc.c) + " " + std::to_string(cc.h) + "x" + std::to_string(cc.w) + " O" +
         std::to_string(cc.o) + " k" + std::to_string(cc.k) + " s" + std::to_string(cc.stride) +
         " p" + std::to_string(cc.pad);
}

class ConvOffloadTest : public OffloadEngineTest, public ::testing::WithParamInterface<ConvCase> {};

TEST_P(ConvOffloadTest, ForwardAndBackwardEqualPlainUpToSummationOrder) {
  const ConvCase cc = GetParam();
  SCOPED_TRACE(case_name(cc));
  nn::ConvGeometry g;
  g.stride_h = g.stride_w = cc.stride;
  g.pad_h = g.pad_w = cc.pad;
  const int64_t oh = g.out_h(cc.h, cc.k), ow = g.out_w(cc.w, cc.k);
  TempoCompute tempo(engine_, "layer1.conv", cc.mode);
  const Tensor x = random_tensor({cc.n, cc.c, cc.h, cc.w}, rng_);
  const Tensor w = random_tensor({cc.o, cc.c, cc.k, cc.k}, rng_);
  const Tensor dy = random_tensor({cc.n, cc.o, oh, ow}, rng_);

  std::unique_ptr<nn::SavedProduct> st, sp, sb;
  const Tensor yt = tempo.conv2d(x, w, g, &st);
  const Tensor yp = plain_.conv2d(x, w, g, &sp);
  const Tensor yb = plain_.conv2d(abs_of(x), abs_of(w), g, &sb);
  expect_within_sum_order_bound(yt, yp, yb, cc.c * cc.k * cc.k, "Y");
  EXPECT_GT(counters().cache_bytes, 0) << "training forward caches X' and W'";

  Tensor dxt, dwt, dxp, dwp, dxb, dwb;
  tempo.conv2d_backward(dy, &st, &dxt, &dwt);
  plain_.conv2d_backward(dy, &sp, &dxp, &dwp);
  plain_.conv2d_backward(abs_of(dy), &sb, &dxb, &dwb);
  expect_within_sum_order_bound(dxt, dxp, dxb, cc.o * cc.k * cc.k, "dX");
  expect_within_sum_order_bound(dwt, dwp, dwb, cc.n * oh * ow, "dW");
  EXPECT_EQ(st, nullptr);
  EXPECT_EQ(counters().requests, 3u) << "the worker computed all three products";
  EXPECT_EQ(counters().cache_bytes, 0) << "backward frees both handles";
  EXPECT_EQ(counters().cached_tensors, 0);
  EXPECT_EQ(counters().failed, 0u);
}

INSTANTIATE_TEST_SUITE_P(
    PatchAndChannelModes, ConvOffloadTest,
    ::testing::Values(
        // Patch mode: stride 1/2, padding 0/1, kernel 1/3, odd sizes.
        ConvCase{3, 5, 9, 7, 6, 3, 1, 1, ConvMode::kPatch},
        ConvCase{2, 4, 11, 9, 7, 3, 2, 1, ConvMode::kPatch},
        ConvCase{3, 3, 8, 8, 5, 3, 1, 0, ConvMode::kPatch},
        ConvCase{2, 6, 9, 9, 4, 3, 2, 0, ConvMode::kPatch},
        ConvCase{3, 7, 5, 5, 9, 1, 1, 0, ConvMode::kPatch},
        ConvCase{2, 8, 9, 7, 5, 1, 2, 0, ConvMode::kPatch},
        // Channel mode: the worker runs real convolutions (oneDNN) on blinded NCHW tensors.
        ConvCase{3, 5, 9, 7, 6, 3, 1, 1, ConvMode::kChannel},
        ConvCase{2, 4, 11, 9, 7, 3, 2, 1, ConvMode::kChannel},
        ConvCase{3, 7, 5, 5, 9, 1, 1, 0, ConvMode::kChannel},
        ConvCase{2, 8, 9, 7, 5, 1, 2, 0, ConvMode::kChannel}),
    [](const ::testing::TestParamInfo<ConvCase>& info) {
      std::string s = case_name(info.param);
      for (char& ch : s)
        if (ch == ' ') ch = '_';
      return s;
    });

struct TransposeCase {
  bool trans_a, trans_b;
};

class BatchedMatmulOffloadTest : public OffloadEngineTest,
                                 public ::testing::WithParamInterface<TransposeCase> {};

TEST_P(BatchedMatmulOffloadTest, EqualsPlainUpToSummationOrder) {
  const auto [ta, tb] = GetParam();
  const int64_t batch = 5, m = 13, k = 11, n = 7;
  TempoCompute tempo(engine_, "blocks.0.attn", ConvMode::kPatch);
  const Tensor a = random_tensor(ta ? Shape{batch, k, m} : Shape{batch, m, k}, rng_);
  const Tensor b = random_tensor(tb ? Shape{batch, n, k} : Shape{batch, k, n}, rng_);
  const Tensor ct = tempo.batched_matmul(a, b, ta, tb);
  const Tensor cp = plain_.batched_matmul(a, b, ta, tb);
  const Tensor cb = plain_.batched_matmul(abs_of(a), abs_of(b), ta, tb);
  expect_within_sum_order_bound(ct, cp, cb, k, "C");
  EXPECT_EQ(counters().requests, 1u);
  EXPECT_EQ(counters().cache_bytes, 0) << "attention products cache nothing";
}

INSTANTIATE_TEST_SUITE_P(AllTransposes, BatchedMatmulOffloadTest,
                         ::testing::Values(TransposeCase{false, false}, TransposeCase{false, true},
                                           TransposeCase{true, false}, TransposeCase{true, true}),
                         [](const ::testing::TestParamInfo<TransposeCase>& info) {
                           return std::string(info.param.trans_a ? "AT" : "A") +
                                  (info.param.trans_b ? "BT" : "B");
                         });

// Attention's products in training: the worker keeps A' and B' from the forward, and the
// backward sends only the two blinded output gradients (the key shift, per entry).
class BatchedKeyShiftTest : public OffloadEngineTest, public ::testing::WithParamInterface<bool> {};

TEST_P(BatchedKeyShiftTest, BackwardSendsOnlyTheOutputGradientAndEqualsPlain) {
  const bool tb = GetParam();
  const int64_t batch = 6, m = 13, k = 5, n = 9;
  TempoCompute tempo(engine_, "attn", ConvMode::kPatch);
  const Tensor a = random_tensor({batch, m, k}, rng_);
  const Tensor b = random_tensor(tb ? Shape{batch, n, k} : Shape{batch, k, n}, rng_);
  const Tensor dc = random_tensor({batch, m, n}, rng_);

  std::unique_ptr<nn::SavedProduct> st, sp, sb;
  const Tensor ct = tempo.batched_matmul_forward(a, b, tb, &st);
  const Tensor cp = plain_.batched_matmul_forward(a, b, tb, &sp);
  const Tensor cb = plain_.batched_matmul_forward(abs_of(a), abs_of(b), tb, &sb);
  expect_within_sum_order_bound(ct, cp, cb, k, "C");
  EXPECT_EQ(counters().cached_tensors, 2) << "A' and B' stay on the worker";
  EXPECT_EQ(counters().cache_bytes, (a.numel() + b.numel()) * int64_t{4});

  Tensor dat, dbt, dap, dbp, dab, dbb;
  tempo.batched_matmul_backward(dc, &st, &dat, &dbt);
  plain_.batched_matmul_backward(dc, &sp, &dap, &dbp);
  plain_.batched_matmul_backward(abs_of(dc), &sb, &dab, &dbb);
  expect_within_sum_order_bound(dat, dap, dab, n, "dA");
  expect_within_sum_order_bound(dbt, dbp, dbb, m, "dB");
  EXPECT_EQ(st, nullptr) << "backward releases the saved product";
  EXPECT_EQ(counters().cached_tensors, 0);
  EXPECT_EQ(counters().requests, 3u) << "forward, dA, dB";
  EXPECT_EQ(counters().failed, 0u);
  const auto layers = engine_.stats().snapshot();
  const LayerTraffic& t = layers.at("attn");
  // Sent: A', B', dC'1, dC'2 (not A or B again). Received: C', dA', dB'.
  EXPECT_EQ(t.bytes_sent, (a.numel() + b.numel() + 2 * dc.numel()) * 4);
  EXPECT_EQ(t.bytes_received, (dc.numel() + a.numel() + b.numel()) * 4);
}

INSTANTIATE_TEST_SUITE_P(BothLayouts, BatchedKeyShiftTest, ::testing::Values(false, true),
                         [](const auto& info) { return std::string(info.param ? "BT" : "B"); });

TEST_F(OffloadEngineTest, TrainingForwardCachesBothBlindedOperandsUntilBackward) {
  TempoCompute tempo(engine_, "fc", ConvMode::kPatch);
  const Tensor x = random_tensor({8, 12}, rng_), w = random_tensor({12, 6}, rng_);
  std::unique_ptr<nn::SavedProduct> saved;
  tempo.matmul(x, w, &saved);
  EXPECT_EQ(counters().cache_bytes, (8 * 12 + 12 * 6) * int64_t{4});
  EXPECT_EQ(counters().cached_tensors, 2);
  Tensor dx, dw;
  tempo.matmul_backward(random_tensor({8, 6}, rng_), &saved, &dx, &dw);
  EXPECT_EQ(counters().cache_bytes, 0);
  EXPECT_EQ(counters().cached_tensors, 0);
  EXPECT_GT(counters().cache_peak_bytes, 0);
}

TEST_F(OffloadEngineTest, BackwardWithOnlyOneGradientStillFreesTheHandles) {
  TempoCompute tempo(engine_, "fc", ConvMode::kPatch);
  const Tensor x = random_tensor({6, 10}, rng_), w = random_tensor({10, 4}, rng_);
  const Tensor dy = random_tensor({6, 4}, rng_);
  for (int which = 0; which < 3; ++which) {  // dX only (a first layer), dW only, neither
    std::unique_ptr<nn::SavedProduct> st, sp;
    tempo.matmul(x, w, &st);
    plain_.matmul(x, w, &sp);
    ASSERT_EQ(counters().cached_tensors, 2);
    Tensor dxt, dwt, dxp, dwp;
    tempo.matmul_backward(dy, &st, which == 0 ? &dxt : nullptr, which == 1 ? &dwt : nullptr);
    plain_.matmul_backward(dy, &sp, &dxp, &dwp);
    EXPECT_EQ(counters().cached_tensors, 0) << "case " << which;
    EXPECT_EQ(counters().cache_bytes, 0) << "case " << which;
    if (which == 0) {
      EXPECT_EQ(dxt.shape(), dxp.shape());
    }
    if (which == 1) {
      EXPECT_EQ(dwt.shape(), dwp.shape());
    }
  }
  EXPECT_EQ(counters().failed, 0u);
}

TEST_F(OffloadEngineTest, EvalForwardsCacheNothing) {
  TempoCompute patch(engine_, "conv", ConvMode::kPatch),
      channel(engine_, "conv2", ConvMode::kChannel);
  const Tensor x = random_tensor({2, 4, 7, 7}, rng_), w = random_tensor({5, 4, 3, 3}, rng_);
  nn::ConvGeometry g;
  g.pad_h = g.pad_w = 1;
  const Tensor y1 = patch.conv2d(x, w, g, nullptr);
  const Tensor y2 = channel.conv2d(x, w, g, nullptr);
  const Tensor y3 = patch.matmul(random_tensor({3, 9}, rng_), random_tensor({9, 2}, rng_), nullptr);
  EXPECT_EQ(y1.shape(), (Shape{2, 5, 7, 7}));
  EXPECT_EQ(y2.shape(), (Shape{2, 5, 7, 7}));
  EXPECT_EQ(counters().requests, 3u);
  EXPECT_EQ(counters().cache_peak_bytes, 0) << "nothing was ever cached";
  EXPECT_EQ(counters().cached_tensors, 0);
}

TEST_F(OffloadEngineTest, TrafficStatsCountTheProtocolMinimumPerLayer) {
  TempoCompute tempo(engine_, "fc", ConvMode::kPatch);
  const int64_t m = 8, k = 12, n = 6;
  std::unique_ptr<nn::SavedProduct> saved;
  tempo.matmul(random_tensor({m, k}, rng_), random_tensor({k, n}, rng_), &saved);
  Tensor dx, dw;
  tempo.matmul_backward(random_tensor({m, n}, rng_), &saved, &dx, &dw);
  const auto layers = engine_.stats().snapshot();
  ASSERT_EQ(layers.count("fc"), 1u);
  const LayerTraffic& t = layers.at("fc");
  // Sent: X', W', dY'1, dY'2. Received: Y', dX', dW'.
  EXPECT_EQ(t.bytes_sent, (m * k + k * n + 2 * m * n) * 4);
  EXPECT_EQ(t.bytes_received, (m * n + m * k + k * n) * 4);
  EXPECT_EQ(t.min_bytes, t.bytes_sent + t.bytes_received);
  EXPECT_EQ(t.requests, 3);
  EXPECT_EQ(uint64_t(t.bytes_sent), counters().bytes_in) << "what the worker received";
  EXPECT_EQ(uint64_t(t.bytes_received), counters().bytes_out);
}

/// A model whose placement is easy to read: conv1 (first) ... head (last), nested blocks.
std::unique_ptr<models::NamedSequential> placement_model(Rng& rng) {
  auto net = std::make_unique<models::NamedSequential>();
  net->emplace<nn::Conv2d>("conv1", 3, 4, 3, rng, 1, 1, false);
  auto& layer1 = net->emplace<models::NamedSequential>("layer1");
  layer1.emplace<nn::Conv2d>("conv", 4, 4, 3, rng, 1, 1, false);
  layer1.emplace<nn::Conv2d>("shortcut", 4, 4, 1, rng, 1, 0, false);
  auto& layer10 = net->emplace<models::NamedSequential>("layer10");  // "layer1" must not cover it
  layer10.emplace<nn::Conv2d>("conv", 4, 4, 3, rng, 1, 1, false);
  net->emplace<nn::MultiHeadSelfAttention>("attn", 8, 2, rng);
  net->emplace<nn::Linear>("fc", 8, 8, rng);
  net->emplace<nn::Linear>("head", 8, 10, rng);
  return net;
}

worker::WorkerOptions one_thread() {
  worker::WorkerOptions wo;
  wo.threads = 1;
  return wo;
}

std::map<std::string, PlacedLayer> by_path(const std::vector<PlacedLayer>& placed) {
  std::map<std::string, PlacedLayer> m;
  for (const auto& p : placed) m[p.path] = p;
  return m;
}

std::map<std::string, nn::Module*> modules_by_path(nn::Module& root) {
  std::map<std::string, nn::Module*> m;
  for (auto& nm : nn::named_modules(root)) m[nm.path] = nm.module;
  return m;
}

TEST_F(OffloadEngineTest, DefaultPlacementKeepsFirstLayerAndHeadInTheTee) {
  Rng rng(1);
  auto net = placement_model(rng);
  const auto placed = by_path(engine_.apply(*net));
  auto mods = modules_by_path(*net);
  // Attention's own qkv/proj Linears are product layers too; they are neither first nor last.
  for (const char* path : {"conv1", "layer1.conv", "layer1.shortcut", "layer10.conv", "attn",
                           "attn.qkv", "attn.proj", "fc", "head"})
    ASSERT_EQ(placed.count(path), 1u) << path;
  EXPECT_FALSE(placed.at("conv1").offloaded);
  EXPECT_THAT(placed.at("conv1").reason, HasSubstr("first layer"));
  EXPECT_FALSE(placed.at("head").offloaded);
  EXPECT_THAT(placed.at("head").reason, HasSubstr("head"));
  for (const char* path :
       {"layer1.conv", "layer1.shortcut", "layer10.conv", "attn", "attn.qkv", "attn.proj", "fc"})
    EXPECT_TRUE(placed.at(path).offloaded) << path;
  for (const auto& [path, p] : placed) {
    EXPECT_STREQ(mods.at(path)->compute().name(), p.offloaded ? "tempo" : "plain") << path;
    EXPECT_EQ(p.conv_mode, ConvMode::kPatch) << path;
  }
}

TEST(OffloadPolicyTest, KeepInTeePrefixesAndConvModeExceptionsAreHonoured) {
  worker::EmbeddedWorker worker(one_thread());
  OffloadPolicy policy;
  policy.keep_in_tee = {"layer1"};                 // a subtree, not "layer10"
  policy.conv_mode_exceptions = {"layer10.conv"};  // patch -> channel for this one
  policy.keep_head_in_tee = false;
  OffloadEngine engine(worker, policy);
  Rng rng(2);
  auto net = placement_model(rng);
  const auto placed = by_path(engine.apply(*net));
  EXPECT_FALSE(placed.at("conv1").offloaded);
  EXPECT_FALSE(placed.at("layer1.conv").offloaded);
  EXPECT_FALSE(placed.at("layer1.shortcut").offloaded);
  EXPECT_THAT(placed.at("layer1.conv").reason, HasSubstr("policy"));
  EXPECT_TRUE(placed.at("layer10.conv").offloaded) << "prefix matching is by path component";
  EXPECT_TRUE(placed.at("head").offloaded) << "keep_head_in_tee = false";
  EXPECT_EQ(placed.at("layer10.conv").conv_mode, ConvMode::kChannel);
  EXPECT_EQ(placed.at("layer1.conv").conv_mode, ConvMode::kPatch);

  // And the exception really changes what the worker receives: the NCHW input (channel mode,
  // 1·4·5·5 floats) instead of its 25x36 patch matrix (patch mode), plus the 4·4·3·3 weights.
  auto mods = modules_by_path(*net);
  const Tensor x = Tensor::filled({1, 4, 5, 5}, 0.5f);
  mods.at("layer10.conv")->train(false);
  mods.at("layer10.conv")->forward(x);
  EXPECT_EQ(worker.counters().requests, 1u);
  EXPECT_EQ(worker.counters().failed, 0u);
  EXPECT_EQ(worker.counters().bytes_in, uint64_t{(100 + 144) * 4});

  OffloadPolicy channel_default;
  channel_default.conv_mode = ConvMode::kChannel;
  channel_default.conv_mode_exceptions = {"layer1"};
  OffloadEngine engine2(worker, channel_default);
  auto net2 = placement_model(rng);
  const auto placed2 = by_path(engine2.apply(*net2));
  EXPECT_EQ(placed2.at("layer1.conv").conv_mode, ConvMode::kPatch);
  EXPECT_EQ(placed2.at("layer1.shortcut").conv_mode, ConvMode::kPatch);
  EXPECT_EQ(placed2.at("layer10.conv").conv_mode, ConvMode::kChannel);
}

TEST(OffloadPolicyTest, AttentionInTeeKeepsOnlyTheAttentionProductsInTheTee) {
  Rng rng(3);
  const Tensor x = Tensor::filled({2, 5, 8}, 0.25f);  // [batch, tokens, dim]
  // Requests one attention forward sends: qkv and proj always; Q.K^T and A.V unless kept.
  for (const bool keep : {false, true}) {
    worker::EmbeddedWorker worker(one_thread());
    OffloadPolicy policy;
    policy.keep_attention_in_tee = keep;
    OffloadEngine engine(worker, policy);
    auto net = placement_model(rng);
    const auto placed = by_path(engine.apply(*net));
    EXPECT_EQ(placed.at("attn").offloaded, !keep);
    if (keep) {
      EXPECT_THAT(placed.at("attn").reason, HasSubstr("attention products"));
    }
    EXPECT_TRUE(placed.at("attn.qkv").offloaded);
    EXPECT_TRUE(placed.at("attn.proj").offloaded);
    EXPECT_TRUE(placed.at("fc").offloaded);
    auto mods = modules_by_path(*net);
    nn::Module& attn = *mods.at("attn");
    attn.train(false);
    const Tensor y = attn.forward(x);
    EXPECT_EQ(worker.counters().requests, keep ? 2u : 4u) << "keep_attention_in_tee " << keep;
    EXPECT_EQ(worker.counters().failed, 0u);
    // Same result as computing everything in the TEE.
    for (auto& [path, m] : mods) m->set_compute(&nn::plain_compute());
    const Tensor ref = attn.forward(x);
    ASSERT_EQ(y.shape(), ref.shape());
    for (int64_t i = 0; i < y.numel(); ++i)
      EXPECT_NEAR(y.data()[i], ref.data()[i], 1e-5f * (1.0f + std::fabs(ref.data()[i])));
  }
}

// A worker whose every result is wrong, under --on-integrity-failure local: each attention
// product, forward and backward, is computed in the TEE instead and equals the plain one.
TEST(OffloadIntegrityTest, RejectedAttentionResultsAreComputedInTheTee) {
  worker::WorkerOptions wo = one_thread();
  wo.fault = "zeros:1";
  worker::EmbeddedWorker worker(wo);
  OffloadPolicy policy;
  policy.integrity.on_failure = integrity::FailureAction::kLocal;
  OffloadEngine engine(worker, policy);
  TempoCompute tempo(engine, "attn", ConvMode::kPatch);
  std::mt19937 rng(9);
  for (const bool tb : {false, true}) {
    const Tensor a = random_tensor({4, 6, 3}, rng);
    const Tensor b = random_tensor(tb ? Shape{4, 5, 3} : Shape{4, 3, 5}, rng);
    const Tensor dc = random_tensor({4, 6, 5}, rng);
    std::unique_ptr<nn::SavedProduct> st, sp;
    const Tensor ct = tempo.batched_matmul_forward(a, b, tb, &st);
    const Tensor cp = nn::plain_compute().batched_matmul_forward(a, b, tb, &sp);
    Tensor dat, dbt, dap, dbp;
    tempo.batched_matmul_backward(dc, &st, &dat, &dbt);
    nn::plain_compute().batched_matmul_backward(dc, &sp, &dap, &dbp);
    for (const auto& [got, want] : {std::pair{&ct, &cp}, {&dat, &dap}, {&dbt, &dbp}}) {
      ASSERT_EQ(got->shape(), want->shape());
      for (int64_t i = 0; i < got->numel(); ++i)
        ASSERT_NEAR(got->data()[i], want->data()[i], 1e-5f) << "trans_b " << tb << " entry " << i;
    }
  }
  EXPECT_EQ(engine.integrity().local_fallbacks(), 6) << "three products per layout, all rejected";
}

// An honest result whose rows' absolute sums pass FLT_MAX (entries ~6·10^36, 64 of them per
// row): the decryption's fp32 projection lanes overflow, and the check projects in double
// instead of failing it (under --on-integrity-failure abort a failure would throw).
TEST(OffloadIntegrityTest, HonestResultsWhoseRowSumsOverflowFp32StillPass) {
  worker::EmbeddedWorker worker(one_thread());
  OffloadPolicy policy;
  policy.obfuscation.sigma = 0;  // no scaling: the entries stay as large as the plain product's
  policy.integrity.on_failure = integrity::FailureAction::kAbort;
  OffloadEngine engine(worker, policy);
  TempoCompute tempo(engine, "fc", ConvMode::kPatch);
  const int64_t m = 16, k = 64, n = 64;
  Tensor x({m, k}), w({k, n});
  for (int64_t i = 0; i < x.numel(); ++i) x.data()[i] = 1e17f * (1.0f + 0.01f * float(i % 7));
  for (int64_t i = 0; i < w.numel(); ++i) w.data()[i] = 1e18f * (1.0f + 0.01f * float(i % 5));
  std::unique_ptr<nn::SavedProduct> saved;
  Tensor y;
  ASSERT_NO_THROW(y = tempo.matmul(x, w, &saved));
  double row = 0.0;
  for (int64_t j = 0; j < n; ++j) row += std::fabs(double(y.data()[j]));
  EXPECT_GT(row, double(std::numeric_limits<float>::max())) << "the case must overflow fp32";
  EXPECT_EQ(engine.integrity().failures(), 0);
  EXPECT_EQ(engine.integrity().checks(), 1);
}

TEST(OffloadPolicyTest, OffloadingFirstLayerOnlyWhenAsked) {
  worker::EmbeddedWorker worker(one_thread());
  OffloadPolicy policy;
  policy.keep_first_in_tee = false;
  OffloadEngine engine(worker, policy);
  Rng rng(3);
  auto net = placement_model(rng);
  const auto placed = by_path(engine.apply(*net));
  EXPECT_TRUE(placed.at("conv1").offloaded);
  EXPECT_FALSE(placed.at("head").offloaded);
}

class TinyCacheOffloadTest : public OffloadEngineTest {
 protected:
  static worker::WorkerLimits tiny_cache() {
    worker::WorkerLimits l;
    l.max_cache_bytes = 64;  // 16 floats: no operand of these products fits
    return l;
  }
  TinyCacheOffloadTest() : OffloadEngineTest(tiny_cache()) {}
};

TEST_F(TinyCacheOffloadTest, WorkerRejectionSurfacesAsAnExceptionNamingTheLayer) {
  TempoCompute tempo(engine_, "layer3.1.conv2", ConvMode::kPatch);
  const Tensor x = random_tensor({8, 12}, rng_), w = random_tensor({12, 6}, rng_);
  std::unique_ptr<nn::SavedProduct> saved;
  try {
    tempo.matmul(x, w, &saved);
    FAIL() << "a cache over the worker's bound must be rejected";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("layer3.1.conv2"));
    EXPECT_THAT(e.what(), HasSubstr("forward"));
  }
  EXPECT_EQ(counters().failed, 1u);
  EXPECT_EQ(counters().cache_bytes, 0) << "a rejected request leaves the cache as it was";
  // Eval forwards cache nothing, so the same worker still serves them.
  const Tensor y = tempo.matmul(x, w, nullptr);
  EXPECT_EQ(y.shape(), (Shape{8, 6}));
}

}  // namespace
}  // namespace tempo::offload
