// The integrity checks (docs/integrity.md): zero false alarms on honest results, and detection
// rates of corrupted results that match the stated bounds, measured over 10,000 results per mode.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "common/blinded_tensor.h"
#include "master/integrity/conv_check.h"
#include "master/integrity/product_check.h"
#include "master/integrity/result_check.h"
#include "worker/fault_injector.h"
#include "worker/worker.h"

namespace tempo::integrity {
namespace {

using protocol::Op;
using protocol::Operand;
using protocol::Request;

/// Random entries the way blinding makes them: N(0,1) times power-of-two scales 2^[-16, 16]
/// (row and column scales of up to 2^8 each), signs mixed.
BlindedTensor blinded_like(const Shape& s, std::mt19937_64& rng, bool scaled = true) {
  BlindedTensor t = BlindedTensor::allocate(s);
  std::normal_distribution<float> normal;
  std::uniform_int_distribution<int> e(-16, 16);
  float* v = t.mutable_data();
  const int64_t row = s[s.rank() - 1];
  float scale = 1;
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (scaled && i % row == 0) scale = std::ldexp(1.0f, e(rng));
    v[i] = normal(rng) * scale;
  }
  return t;
}

std::unique_ptr<worker::Worker> cpu_worker(const std::string& fault = "") {
  worker::WorkerOptions o;
  o.threads = 1;
  o.fault = fault;
  return worker::make_worker(o);
}

BlindedTensor run(worker::Worker& w, Request r) {
  protocol::Response resp = w.execute(std::move(r));
  EXPECT_TRUE(resp.ok) << resp.error;
  return std::move(resp.result);
}

Request product(const BlindedTensor& a, const BlindedTensor& b, bool ta, bool tb,
                Op op = Op::kMatMul) {
  Request r;
  r.op = op;
  r.trans_a = ta;
  r.trans_b = tb;
  r.a = Operand::inline_tensor(a);
  r.b = Operand::inline_tensor(b);
  return r;
}

TEST(IntegritySoundness, HonestProductsOfManyShapesNeverFail) {
  std::mt19937_64 rng(7);
  auto w = cpu_worker();
  struct Dims {
    int64_t m, k, n;
  };
  // Includes a long inner dimension (k = 65536): the tolerance grows with k as the error does.
  const std::vector<Dims> dims = {{1, 1, 1},     {3, 5, 7},      {64, 576, 64}, {257, 1000, 3},
                                  {2, 65536, 3}, {128, 64, 512}, {33, 4608, 17}};
  for (const Dims& d : dims)
    for (int flags = 0; flags < 4; ++flags) {
      const bool ta = flags & 1, tb = flags & 2;
      const BlindedTensor a = blinded_like(ta ? Shape{d.k, d.m} : Shape{d.m, d.k}, rng);
      const BlindedTensor b = blinded_like(tb ? Shape{d.n, d.k} : Shape{d.k, d.n}, rng);
      const BlindedTensor c = run(*w, product(a, b, ta, tb));
      for (int rounds : {1, 2, 5}) {
        const CheckOutcome o = check_product(a, b, ta, tb, c, rounds);
        EXPECT_TRUE(o.passed) << d.m << "x" << d.k << "x" << d.n << " flags " << flags << ": "
                              << o.reason;
        EXPECT_LT(o.worst_ratio, 1.0);
      }
    }
}

TEST(IntegritySoundness, HonestBatchedProductsNeverFail) {
  std::mt19937_64 rng(8);
  auto w = cpu_worker();
  for (int flags = 0; flags < 4; ++flags) {
    const bool ta = flags & 1, tb = flags & 2;
    const int64_t batch = 12, m = 65, k = 32, n = 65;
    const BlindedTensor a = blinded_like(ta ? Shape{batch, k, m} : Shape{batch, m, k}, rng);
    const BlindedTensor b = blinded_like(tb ? Shape{batch, n, k} : Shape{batch, k, n}, rng);
    const BlindedTensor c = run(*w, product(a, b, ta, tb, Op::kBatchedMatMul));
    const CheckOutcome o = check_product(a, b, ta, tb, c, 2);
    EXPECT_TRUE(o.passed) << o.reason;
  }
}

TEST(IntegritySoundness, HonestConvolutionsNeverFail) {
  std::mt19937_64 rng(9);
  auto w = cpu_worker();
  struct Case {
    int64_t n, c, h, o, k, stride, pad;
  };
  for (const Case& t : std::vector<Case>{{2, 3, 8, 4, 3, 1, 1},
                                         {4, 16, 16, 32, 3, 2, 1},
                                         {8, 64, 8, 64, 3, 1, 1},
                                         // Narrow planes, many of them: the projections split
                                         // rows over the threads (conv_check.cpp).
                                         {8, 64, 8, 128, 3, 1, 1},
                                         {16, 128, 8, 64, 3, 1, 1},
                                         {3, 8, 9, 5, 1, 1, 0},
                                         {2, 5, 11, 3, 5, 2, 2}}) {
    const protocol::ConvParams p{t.stride, t.stride, t.pad, t.pad};
    const BlindedTensor x = blinded_like({t.n, t.c, t.h, t.h}, rng);
    const BlindedTensor wt = blinded_like({t.o, t.c, t.k, t.k}, rng);
    Request f = product(x, wt, false, false, Op::kConvForward);
    f.conv = p;
    const BlindedTensor y = run(*w, f);
    EXPECT_TRUE(check_conv_forward(x, wt, p, y, 2).passed);
    const BlindedTensor dy = blinded_like(y.shape(), rng);
    Request bd = product(dy, wt, false, false, Op::kConvBackwardData);
    bd.conv = p;
    bd.out_shape = x.shape();
    const CheckOutcome od = check_conv_backward_data(dy, wt, p, run(*w, bd), 2);
    EXPECT_TRUE(od.passed) << od.reason;
    Request bw = product(x, dy, false, false, Op::kConvBackwardWeights);
    bw.conv = p;
    bw.out_shape = wt.shape();
    const CheckOutcome ow = check_conv_backward_weights(x, dy, p, run(*w, bw), 2);
    EXPECT_TRUE(ow.passed) << ow.reason;
  }
}

TEST(IntegritySoundness, ToleranceGrowsWithInputRounding) {
  EXPECT_NEAR(dot_relative_bound(1000, Precision::kFp32), gamma(1000, 0x1p-24), 1e-15);
  EXPECT_GT(dot_relative_bound(1000, Precision::kTf32), 2 * 0x1p-11);
  EXPECT_GT(dot_relative_bound(1000, Precision::kBf16), 2 * 0x1p-8);
  EXPECT_LT(dot_relative_bound(1000, Precision::kBf16), 2.1 * 0x1p-8 + 1000 * 0x1p-23);
}

TEST(IntegritySoundness, WorkersComputingCoarserThanTheMasterAcceptsAreRefused) {
  EXPECT_EQ(precision_refusal("fp32", Precision::kFp32), "");
  EXPECT_EQ(precision_refusal("fp32", Precision::kTf32), "");  // finer than accepted: fine
  EXPECT_EQ(precision_refusal("tf32", Precision::kTf32), "");
  EXPECT_EQ(precision_refusal("tf32", Precision::kFp32),
            "computes in tf32, coarser than the fp32 this master accepts");
  EXPECT_EQ(precision_refusal("bf16", Precision::kTf32),
            "computes in bf16, coarser than the tf32 this master accepts");
  EXPECT_EQ(precision_refusal("fp8", Precision::kBf16), "declares an unknown precision 'fp8'");
  EXPECT_EQ(precision_refusal("", Precision::kBf16), "declares an unknown precision ''");
}

/// Detection over `trials` corrupted results of one fault mode on small products: the fraction
/// of corrupted results the check rejects, and how many results the worker corrupted.
struct Rates {
  int64_t faults = 0, detected = 0, false_alarms = 0;
  double rate() const { return faults ? double(detected) / double(faults) : 0; }
};

Rates measure_products(const std::string& fault, int rounds, int trials) {
  std::mt19937_64 rng(11);
  auto w = cpu_worker(fault);
  Rates r;
  uint64_t before = 0;
  for (int i = 0; i < trials; ++i) {
    const bool ta = i & 1, tb = i & 2;
    const int64_t m = 6, k = 5, n = 4;
    const BlindedTensor a = blinded_like(ta ? Shape{k, m} : Shape{m, k}, rng);
    const BlindedTensor b = blinded_like(tb ? Shape{n, k} : Shape{k, n}, rng);
    const BlindedTensor c = run(*w, product(a, b, ta, tb));
    const uint64_t now = w->counters().faults_injected;
    const bool corrupted = now != before;
    before = now;
    const bool rejected = !check_product(a, b, ta, tb, c, rounds).passed;
    r.faults += corrupted;
    r.detected += corrupted && rejected;
    r.false_alarms += !corrupted && rejected;
  }
  return r;
}

class EveryRoundCatches : public ::testing::TestWithParam<std::string> {};

// Corruptions past the detection threshold on an entry that no other error cancels: the check
// rejects them in every round (±1 vectors never zero an entry), so all 10,000 are caught.
TEST_P(EveryRoundCatches, EveryCorruptedProductIsRejected) {
  const Rates r = measure_products(GetParam(), 1, 10000);
  EXPECT_GT(r.faults, 9000);
  EXPECT_EQ(r.detected, r.faults);
  EXPECT_EQ(r.false_alarms, 0);
}

INSTANTIATE_TEST_SUITE_P(Modes, EveryRoundCatches,
                         ::testing::Values("perturb-one", "sign-flip", "rescale", "stale", "swap",
                                           "zeros", "wrong-shape", "random:1"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (char& ch : s)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return s;
                         });

// Two opposite errors in one row cancel under exactly half the ±1 vectors: the worst case of the
// bound. Detection must be 1 - 2^-t (10,000 trials: 4.5 sigma is about 0.023 at t = 1).
TEST(IntegritySoundness, CancellingPairIsCaughtWithProbabilityOneMinusHalfToTheT) {
  for (int t : {1, 2, 3}) {
    const Rates r = measure_products("pair", t, 10000);
    const double expected = 1.0 - std::ldexp(1.0, -t);
    const double sigma = std::sqrt(expected * (1 - expected) / double(r.faults));
    EXPECT_GT(r.faults, 9000);
    EXPECT_NEAR(r.rate(), expected, 4.5 * sigma) << "t = " << t;
    EXPECT_EQ(r.false_alarms, 0);
  }
}

// The conv checks project two axes (bilinear): the bound is 3/4 per round; an adversarial pair
// on one projected position (same image, two output channels) cancels with probability 1/2.
TEST(IntegritySoundness, ConvolutionPairDetectionRespectsTheBilinearBound) {
  std::mt19937_64 rng(12);
  auto w = cpu_worker("pair");
  const protocol::ConvParams p{1, 1, 1, 1};
  int64_t faults = 0, detected = 0;
  uint64_t before = 0;
  const int trials = 10000;
  for (int i = 0; i < trials; ++i) {
    const BlindedTensor x = blinded_like({2, 2, 3, 3}, rng);
    const BlindedTensor wt = blinded_like({2, 2, 3, 3}, rng);
    Request f = product(x, wt, false, false, Op::kConvForward);
    f.conv = p;
    const BlindedTensor y = run(*w, f);
    faults += w->counters().faults_injected != before;
    before = w->counters().faults_injected;
    detected += !check_conv_forward(x, wt, p, y, 1).passed;
  }
  EXPECT_GT(faults, 9000);
  const double rate = double(detected) / double(faults);
  EXPECT_GE(rate, 0.25);  // the bound: a miss is at most 3/4 likely
  EXPECT_NEAR(rate, 0.5, 4.5 * std::sqrt(0.25 / double(faults)));
}

TEST(IntegritySoundness, WrongShapeAndNonFiniteResultsFailWithoutARound) {
  std::mt19937_64 rng(13);
  const BlindedTensor a = blinded_like({4, 3}, rng), b = blinded_like({3, 2}, rng);
  auto w = cpu_worker();
  BlindedTensor c = run(*w, product(a, b, false, false));
  const BlindedTensor wrong = BlindedTensor::allocate({4, 3});
  CheckOutcome o = check_product(a, b, false, false, wrong, 1);
  EXPECT_FALSE(o.passed);
  EXPECT_TRUE(std::isinf(o.worst_ratio));
  BlindedTensor nan_c = c.clone();
  nan_c.mutable_data()[5] = NAN;
  EXPECT_FALSE(check_product(a, b, false, false, nan_c, 1).passed);
  BlindedTensor inf_c = c.clone();
  inf_c.mutable_data()[2] = INFINITY;
  EXPECT_FALSE(check_product(a, b, false, false, inf_c, 1).passed);
}

TEST(IntegritySoundness, FaultSpecParsesModesFractionsAndSeeds) {
  const auto s = worker::FaultSpec::parse("random:0.25:9");
  EXPECT_EQ(s.mode, worker::FaultMode::kRandom);
  EXPECT_DOUBLE_EQ(s.fraction, 0.25);
  EXPECT_EQ(s.seed, 9u);
  EXPECT_DOUBLE_EQ(worker::FaultSpec::parse("random").fraction, 0.05);
  EXPECT_DOUBLE_EQ(worker::FaultSpec::parse("rescale:1:3").factor, 3.0);
  EXPECT_THROW(worker::FaultSpec::parse("bogus"), std::invalid_argument);
  EXPECT_THROW(worker::FaultSpec::parse("zeros:2"), std::invalid_argument);
}

}  // namespace
}  // namespace tempo::integrity
