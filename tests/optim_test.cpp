#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <vector>

#include "master/optim/adamw.h"
#include "master/optim/lr_schedule.h"
#include "master/optim/sgd.h"

namespace tempo::optim {
namespace {

// A decayed "weight" and a non-decayed "bias", with three fixed gradients. The expected values
// come from torch 1.13 (torch.optim.SGD / AdamW, bias in a param group with weight_decay=0).
struct TwoParams {
  nn::Parameter w{"weight", tensor({0.5f, -1.25f, 2.0f, 0.75f})};
  nn::Parameter b{"bias", tensor({0.1f, -0.3f}), /*decay=*/false};

  static Tensor tensor(std::vector<float> v) {
    Tensor t({static_cast<int64_t>(v.size())});
    for (size_t i = 0; i < v.size(); ++i) t[static_cast<int64_t>(i)] = v[i];
    return t;
  }
  std::vector<nn::NamedParameter> named() { return {{"fc.weight", &w}, {"fc.bias", &b}}; }
  void set_grads(int t) {
    static const float gw[3][4] = {
        {0.2f, -0.4f, 1.5f, -0.05f}, {-0.3f, 0.25f, 0.5f, 0.6f}, {0.7f, -0.9f, -1.1f, 0.0f}};
    static const float gb[3][2] = {{0.05f, -0.6f}, {0.4f, 0.1f}, {-0.2f, 0.3f}};
    for (int i = 0; i < 4; ++i) w.grad[i] = gw[t][i];
    for (int i = 0; i < 2; ++i) b.grad[i] = gb[t][i];
  }
  void run(Optimizer& opt, int first, int last) {
    for (int t = first; t < last; ++t) {
      set_grads(t);
      opt.step();
    }
  }
  void expect_values(std::vector<float> ew, std::vector<float> eb, float rtol) {
    for (int i = 0; i < 4; ++i) EXPECT_NEAR(w.value[i], ew[i], rtol * std::abs(ew[i])) << i;
    for (int i = 0; i < 2; ++i) EXPECT_NEAR(b.value[i], eb[i], rtol * std::abs(eb[i])) << i;
  }
};

TEST(SGD, MomentumWithWeightDecayMatchesPyTorch) {
  TwoParams p;
  SGD opt(p.named(), {.lr = 0.1, .momentum = 0.9, .nesterov = false, .weight_decay = 0.1});
  p.run(opt, 0, 3);
  p.expect_values({4.054475129e-01f, -1.030839801e+00f, 1.503443003e+00f, 6.082447767e-01f},
                  {3.045000136e-02f, -1.864000112e-01f}, 1e-6f);
  EXPECT_EQ(opt.steps_taken(), 3);
}

TEST(SGD, NesterovWithWeightDecayMatchesPyTorch) {
  TwoParams p;
  SGD opt(p.named(), {.lr = 0.1, .momentum = 0.9, .nesterov = true, .weight_decay = 0.1});
  p.run(opt, 0, 3);
  p.expect_values({3.409298360e-01f, -9.134966135e-01f, 1.416587114e+00f, 5.469199419e-01f},
                  {1.240500901e-02f, -1.777600050e-01f}, 1e-6f);
}

TEST(SGD, PlainWithoutMomentumMatchesPyTorch) {
  TwoParams p;
  SGD opt(p.named(), {.lr = 0.05, .momentum = 0.0, .nesterov = false, .weight_decay = 0.01});
  p.run(opt, 0, 3);
  p.expect_values({4.692528546e-01f, -1.195639610e+00f, 1.952089071e+00f, 7.213881016e-01f},
                  {8.749999851e-02f, -2.900000215e-01f}, 1e-6f);
  EXPECT_TRUE(opt.state().tensors.empty());
}

TEST(SGD, RejectsNesterovWithoutMomentum) {
  TwoParams p;
  EXPECT_THROW(SGD(p.named(), {.lr = 0.1, .momentum = 0, .nesterov = true}), std::invalid_argument);
}

TEST(AdamW, DefaultBetasMatchPyTorch) {
  TwoParams p;
  AdamW opt(p.named(),
            {.lr = 0.01, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.1});
  p.run(opt, 0, 3);
  p.expect_values({4.861925542e-01f, -1.228258014e+00f, 1.973449111e+00f, 7.455771565e-01f},
                  {7.893791795e-02f, -2.837097347e-01f}, 2e-6f);
}

TEST(AdamW, LargeStepsAndEpsMatchPyTorch) {
  TwoParams p;
  AdamW opt(p.named(), {.lr = 0.3, .beta1 = 0.8, .beta2 = 0.95, .eps = 1e-3, .weight_decay = 0.5});
  p.run(opt, 0, 3);
  p.expect_values({1.270776987e-02f, -3.248012364e-01f, 7.652656436e-01f, 3.313871622e-01f},
                  {-5.187129378e-01f, 1.494884342e-01f}, 2e-5f);
}

TEST(Optimizer, WeightDecayIsSkippedForNoDecayParameters) {
  // Zero gradients: only weight decay can move a parameter.
  for (int kind = 0; kind < 2; ++kind) {
    TwoParams p;
    p.w.grad.zero();
    p.b.grad.zero();
    std::unique_ptr<Optimizer> opt;
    if (kind == 0)
      opt = std::make_unique<SGD>(p.named(),
                                  SgdOptions{.lr = 1.0, .momentum = 0.9, .weight_decay = 0.5});
    else
      opt = std::make_unique<AdamW>(p.named(), AdamWOptions{.lr = 1.0, .weight_decay = 0.5});
    opt->step();
    EXPECT_FLOAT_EQ(p.w.value[0], 0.25f) << opt->type();  // 0.5 · (1 - 1.0·0.5)
    EXPECT_FLOAT_EQ(p.w.value[2], 1.0f) << opt->type();
    EXPECT_EQ(p.b.value[0], 0.1f) << opt->type();
    EXPECT_EQ(p.b.value[1], -0.3f) << opt->type();
  }
}

TEST(Optimizer, ZeroGradClearsEveryGradient) {
  TwoParams p;
  p.set_grads(0);
  SGD opt(p.named(), {});
  opt.zero_grad();
  for (int i = 0; i < 4; ++i) EXPECT_EQ(p.w.grad[i], 0.0f);
  for (int i = 0; i < 2; ++i) EXPECT_EQ(p.b.grad[i], 0.0f);
}

TEST(Optimizer, TiedParameterIsUpdatedOnce) {
  nn::Parameter shared("weight", Tensor::filled({2}, 1.0f));
  shared.grad.fill(1.0f);
  SGD opt({{"embed.weight", &shared}, {"head.weight", &shared}}, {.lr = 0.25});
  EXPECT_EQ(opt.params().size(), 1u);
  opt.step();
  EXPECT_EQ(shared.value[0], 0.75f);
  EXPECT_THROW(SGD({{"a", &shared}, {"a", nullptr}}, {}), std::invalid_argument);
}

TEST(Optimizer, SetLrChangesTheNextStep) {
  TwoParams p;
  p.w.grad.fill(1.0f);
  p.b.grad.fill(1.0f);
  SGD opt(p.named(), {.lr = 0.1});
  opt.set_lr(0.5);
  EXPECT_EQ(opt.lr(), 0.5);
  opt.step();
  EXPECT_FLOAT_EQ(p.w.value[0], 0.0f);
}

TEST(Optimizer, ExportedStateResumesBitIdentically) {
  TwoParams ref;
  AdamW a(ref.named(), {.lr = 0.01});
  ref.run(a, 0, 3);

  TwoParams first;
  AdamW b(first.named(), {.lr = 0.01});
  first.run(b, 0, 1);
  OptimizerState s = b.state();
  EXPECT_EQ(s.scalars["step"], 1);
  ASSERT_EQ(s.tensors.size(), 4u);
  EXPECT_EQ(s.tensors[0].first, "exp_avg/fc.weight");
  EXPECT_EQ(s.tensors[3].first, "exp_avg_sq/fc.bias");

  TwoParams resumed;
  resumed.w.value = first.w.value.clone();
  resumed.b.value = first.b.value.clone();
  AdamW c(resumed.named(), {.lr = 123.0});
  c.load_state(s);
  EXPECT_EQ(c.lr(), 0.01);
  EXPECT_EQ(c.steps_taken(), 1);
  resumed.run(c, 1, 3);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(resumed.w.value[i], ref.w.value[i]);
  for (int i = 0; i < 2; ++i) EXPECT_EQ(resumed.b.value[i], ref.b.value[i]);
}

TEST(Optimizer, LoadStateRejectsMismatchesWithoutChangingAnything) {
  TwoParams p;
  AdamW opt(p.named(), {});
  p.run(opt, 0, 1);
  const OptimizerState good = opt.state();
  const float m0 = good.tensors[0].second[0];

  TwoParams q;
  SGD sgd(q.named(), {.momentum = 0.9});
  try {
    sgd.load_state(good);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("saved by AdamW"), std::string::npos) << e.what();
  }

  OptimizerState missing = good;
  missing.tensors.pop_back();
  AdamW other(q.named(), {});
  try {
    other.load_state(missing);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("missing tensor exp_avg_sq/fc.bias"), std::string::npos)
        << e.what();
  }

  OptimizerState wrong_shape = good;
  wrong_shape.tensors[1].second = Tensor::zeros({3});
  try {
    other.load_state(wrong_shape);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("exp_avg/fc.bias has shape [3]"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(other.steps_taken(), 0);
  EXPECT_EQ(other.state().tensors[0].second[0], 0.0f);
  EXPECT_NE(m0, 0.0f);
}

TEST(Optimizer, LargeTensorsTakeTheParallelPathWithTheSameResult) {
  const int64_t n = 3 * kParallelUpdateThreshold + 7;
  nn::Parameter big("weight", Tensor::filled({n}, 1.0f));
  for (int64_t i = 0; i < n; ++i) big.grad[i] = static_cast<float>(i % 13) - 6.0f;
  SGD opt({{"w", &big}}, {.lr = 0.1, .momentum = 0.9, .nesterov = true, .weight_decay = 0.01});
  opt.step();
  opt.step();
  for (int64_t i = 0; i < n; i += 997) {
    // Two Nesterov steps, in the same fp32 operation order as the optimizer.
    float w = 1.0f, buf = 0.0f;
    const float g = big.grad[i];
    for (int s = 0; s < 2; ++s) {
      const float d = g + 0.01f * w;
      buf = 0.9f * buf + d;
      w -= 0.1f * (d + 0.9f * buf);
    }
    ASSERT_NEAR(big.value[i], w, 1e-6f * std::abs(w) + 1e-7f) << i;
  }
}

// ---- learning-rate schedules -------------------------------------------------------------

TEST(LrSchedule, ConstantIsTheBaseRate) {
  LrSchedule s({.kind = LrScheduleKind::kConstant, .base_lr = 0.05});
  EXPECT_DOUBLE_EQ(s.lr_at(0), 0.05);
  EXPECT_DOUBLE_EQ(s.lr_at(1000000), 0.05);
}

TEST(LrSchedule, StepDecaysByGammaEveryStepSizeEpochs) {
  LrSchedule s({.kind = LrScheduleKind::kStep,
                .base_lr = 0.1,
                .step_size = 2,
                .gamma = 0.1,
                .steps_per_epoch = 10});
  EXPECT_DOUBLE_EQ(s.lr_at(0), 0.1);
  EXPECT_DOUBLE_EQ(s.lr_at(19), 0.1);
  EXPECT_NEAR(s.lr_at(20), 0.01, 1e-15);
  EXPECT_NEAR(s.lr_at(39), 0.01, 1e-15);
  EXPECT_NEAR(s.lr_at(40), 0.001, 1e-15);
}

TEST(LrSchedule, WarmupRampsLinearlyThenFollowsTheSchedule) {
  LrSchedule s({.kind = LrScheduleKind::kStep,
                .base_lr = 0.1,
                .warmup_steps = 5,
                .step_size = 8,
                .gamma = 0.5});
  EXPECT_DOUBLE_EQ(s.lr_at(0), 0.02);
  EXPECT_DOUBLE_EQ(s.lr_at(2), 0.06);
  EXPECT_DOUBLE_EQ(s.lr_at(4), 0.1);
  EXPECT_DOUBLE_EQ(s.lr_at(5), 0.1);
  EXPECT_DOUBLE_EQ(s.lr_at(8), 0.05);  // decays count from step 0, warm-up included
}

TEST(LrSchedule, CosineAnnealsFromTheEndOfWarmupToTheFloor) {
  LrSchedule s({.kind = LrScheduleKind::kCosine,
                .base_lr = 1.0,
                .warmup_steps = 10,
                .total_steps = 110,
                .min_lr = 0.1});
  EXPECT_DOUBLE_EQ(s.lr_at(0), 0.1);
  EXPECT_DOUBLE_EQ(s.lr_at(9), 1.0);
  EXPECT_DOUBLE_EQ(s.lr_at(10), 1.0);
  EXPECT_NEAR(s.lr_at(35), 0.1 + 0.45 * (1 + std::cos(std::numbers::pi / 4)), 1e-12);
  EXPECT_NEAR(s.lr_at(60), 0.55, 1e-12);
  EXPECT_NEAR(s.lr_at(110), 0.1, 1e-12);
  EXPECT_NEAR(s.lr_at(5000), 0.1, 1e-12);
}

TEST(LrSchedule, ParsesNamesAndRejectsBadConfigurations) {
  EXPECT_EQ(parse_lr_schedule_kind("cosine"), LrScheduleKind::kCosine);
  EXPECT_EQ(parse_lr_schedule_kind("step"), LrScheduleKind::kStep);
  EXPECT_EQ(parse_lr_schedule_kind("constant"), LrScheduleKind::kConstant);
  EXPECT_STREQ(to_string(LrScheduleKind::kCosine), "cosine");
  EXPECT_THROW(parse_lr_schedule_kind("linear"), std::invalid_argument);
  EXPECT_THROW(LrSchedule({.kind = LrScheduleKind::kCosine, .total_steps = 0}),
               std::invalid_argument);
  EXPECT_THROW(LrSchedule({.kind = LrScheduleKind::kStep, .step_size = 0}), std::invalid_argument);
  EXPECT_THROW(LrSchedule({.kind = LrScheduleKind::kConstant, .warmup_steps = -1}),
               std::invalid_argument);
}

}  // namespace
}  // namespace tempo::optim
