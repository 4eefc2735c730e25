// The CUDA backend computes what the CPU backend computes: same random blinded inputs, every op
// (products with all transposes, batched products, conv forward / backward-data /
// backward-weights with strides, padding and odd sizes), results within a documented fp32 or
// tf32 tolerance. Cached operands stay in device memory between forward and backward, and the
// cache bound still holds. Without a CUDA build or device, each GPU test skips with the reason;
// asking for "cuda" there gives a clear error (checked everywhere).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "common/aligned_buffer.h"
#include "master/integrity/result_check.h"
#include "worker/backend.h"
#include "worker/cpu_backend.h"
#include "worker/cuda/cuda_backend.h"  // CudaBackendStats; no CUDA header inside
#include "worker/worker.h"

namespace tempo::worker {
namespace {

using protocol::ConvParams;
using protocol::Op;
using protocol::Operand;
using protocol::Request;
using protocol::Response;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

#ifdef TEMPO_HAVE_CUDA
CudaBackendStats stats_of(Backend& b) { return dynamic_cast<CudaBackend&>(b).stats(); }
#else
CudaBackendStats stats_of(Backend&) { return {}; }  // unreachable: the GPU tests skip first
#endif

/// Per-element tolerance, relative to the same op computed on |inputs| (the classic bound of a
/// sum of products: |c - ĉ| <= tol · Σ|a||b|). fp32: 5e-4, generous (a direct sum stays within
/// ~sqrt(K) ulps, ~1e-6; the backend never picks cuDNN's FFT or Winograd algorithms,
/// cudnn_conv.cpp); a wrong result misses by O(1). tf32: inputs rounded to a 10-bit
/// mantissa (relative error 2^-11 each, ~1e-3 per product): 1e-2.
double tolerance(Precision p) { return p == Precision::kTf32 ? 1e-2 : 5e-4; }

/// Blinded-like data: N(0,1) values scaled by powers of two per index of the first two
/// dimensions (rows and columns of a matrix; samples and channels of an image batch; output
/// and input channels of a filter), as MM-obfuscation does (sigma 3 by default): magnitudes
/// differ by up to 2^(4 sigma).
BlindedTensor blinded(const Shape& s, uint32_t seed, int sigma = 3) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::uniform_int_distribution<int> exponent(-sigma, sigma);
  const int64_t d0 = s[0], d1 = s[1];
  std::vector<float> scale0(static_cast<size_t>(d0)), scale1(static_cast<size_t>(d1));
  for (auto& v : scale0) v = std::ldexp(1.0f, exponent(rng));
  for (auto& v : scale1) v = std::ldexp(1.0f, exponent(rng));
  BlindedTensor t = BlindedTensor::allocate(s);
  const int64_t inner = t.numel() / (d0 * d1);  // elements per (i0, i1) pair
  for (int64_t i = 0; i < t.numel(); ++i)
    t.mutable_data()[i] = normal(rng) * scale0[static_cast<size_t>(i / (inner * d1))] *
                          scale1[static_cast<size_t>(i / inner % d1)];
  return t;
}

BlindedTensor abs_of(const BlindedTensor& t) {
  BlindedTensor r = BlindedTensor::allocate(t.shape());
  for (int64_t i = 0; i < t.numel(); ++i) r.mutable_data()[i] = std::fabs(t.data()[i]);
  return r;
}

/// Every element of `got` is within tol · bound of `want`; reports the worst ones.
void expect_close(const BlindedTensor& got, const BlindedTensor& want, const BlindedTensor& bound,
                  double tol, const std::string& what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  int64_t bad = 0, worst = -1;
  double worst_ratio = 0;
  for (int64_t i = 0; i < got.numel(); ++i) {
    const double err = std::fabs(double(got.data()[i]) - double(want.data()[i]));
    const double allowed = tol * double(bound.data()[i]) + 1e-30;
    if (!(err <= allowed)) ++bad;  // NaN counts as bad
    const double ratio = err / allowed;
    if (std::isnan(ratio) || ratio > worst_ratio) {
      worst_ratio = ratio;
      worst = i;
    }
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << got.numel()
                    << " elements outside the tolerance; worst at " << worst << ": got "
                    << got.data()[worst] << ", want " << want.data()[worst] << ", bound "
                    << tol * bound.data()[worst] << " (" << worst_ratio << "x the tolerance)";
}

/// "no CUDA device: ...", or "" when cuda:0 can run the tests.
std::string skip_reason() {
  const std::string why = cuda_unavailable_reason();
  if (why.empty() || why.starts_with("no CUDA device")) return why;
  return "no CUDA device: " + why;
}

class CudaVsCpu : public ::testing::TestWithParam<Precision> {
 protected:
  void SetUp() override {
    if (auto why = skip_reason(); !why.empty()) GTEST_SKIP() << why;
    gpu_ = make_backend("cuda", 0, GetParam());
  }

  /// Runs `op` on the GPU, on the CPU, and on the CPU with |inputs| for the error bound.
  template <typename Op>
  void compare(const std::string& what, const BlindedTensor& a, const BlindedTensor& b, Op op) {
    const BlindedTensor got = op(*gpu_, a, b);
    const BlindedTensor want = op(cpu_, a, b);
    const BlindedTensor bound = op(cpu_, abs_of(a), abs_of(b));
    expect_close(got, want, bound, tolerance(GetParam()), what);
  }

  CpuBackend cpu_{2};
  std::unique_ptr<Backend> gpu_;
};

TEST_P(CudaVsCpu, MatmulMatchesCpuForEveryTransposeAndOddSizes) {
  const std::vector<std::tuple<int64_t, int64_t, int64_t>> sizes = {
      {1, 1, 1}, {37, 129, 53}, {300, 513, 257}, {8, 1000, 3}};
  uint32_t seed = 1;
  for (auto [m, k, n] : sizes)
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        const BlindedTensor a = blinded(ta ? Shape{k, m} : Shape{m, k}, seed++);
        const BlindedTensor b = blinded(tb ? Shape{n, k} : Shape{k, n}, seed++);
        compare("matmul " + std::to_string(m) + "x" + std::to_string(k) + "x" + std::to_string(n) +
                    " ta=" + std::to_string(ta) + " tb=" + std::to_string(tb),
                a, b, [&](Backend& be, const BlindedTensor& x, const BlindedTensor& y) {
                  return be.matmul(x, y, ta, tb);
                });
      }
}

TEST_P(CudaVsCpu, BatchedMatmulMatchesCpuForEveryTranspose) {
  const int64_t batch = 5, m = 17, k = 33, n = 9;
  uint32_t seed = 100;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      const BlindedTensor a = blinded(ta ? Shape{batch, k, m} : Shape{batch, m, k}, seed++);
      const BlindedTensor b = blinded(tb ? Shape{batch, n, k} : Shape{batch, k, n}, seed++);
      compare("batched ta=" + std::to_string(ta) + " tb=" + std::to_string(tb), a, b,
              [&](Backend& be, const BlindedTensor& x, const BlindedTensor& y) {
                return be.batched_matmul(x, y, ta, tb);
              });
    }
}

struct ConvCase {
  Shape x, w;
  ConvParams p;
};

std::vector<ConvCase> conv_cases() {
  return {
      {{3, 5, 11, 11}, {7, 5, 3, 3}, {1, 1, 1, 1}},    // 3x3, same padding
      {{2, 4, 13, 9}, {6, 4, 3, 3}, {2, 2, 1, 1}},     // strided, odd non-square input
      {{4, 16, 8, 8}, {32, 16, 1, 1}, {2, 2, 0, 0}},   // 1x1 downsampling shortcut
      {{2, 3, 12, 10}, {5, 3, 5, 3}, {2, 1, 2, 0}},    // rectangular kernel, mixed strides
      {{2, 3, 17, 17}, {8, 3, 7, 7}, {2, 2, 3, 3}},    // 7x7 stem
      {{32, 64, 8, 8}, {64, 64, 3, 3}, {1, 1, 1, 1}},  // a resnet-sized layer
  };
}

Shape conv_out(const ConvCase& c) {
  return {c.x[0], c.w[0], (c.x[2] + 2 * c.p.pad_h - c.w[2]) / c.p.stride_h + 1,
          (c.x[3] + 2 * c.p.pad_w - c.w[3]) / c.p.stride_w + 1};
}

TEST_P(CudaVsCpu, ConvForwardMatchesCpuWithStridesAndPadding) {
  uint32_t seed = 200;
  for (const ConvCase& c : conv_cases()) {
    compare("conv forward x" + c.x.to_string() + " w" + c.w.to_string(), blinded(c.x, seed),
            blinded(c.w, seed + 1),
            [&](Backend& be, const BlindedTensor& x, const BlindedTensor& w) {
              return be.conv_forward(x, w, c.p);
            });
    seed += 2;
  }
}

TEST_P(CudaVsCpu, ConvBackwardDataMatchesCpuWithStridesAndPadding) {
  uint32_t seed = 300;
  for (const ConvCase& c : conv_cases()) {
    compare("conv backward-data x" + c.x.to_string() + " w" + c.w.to_string(),
            blinded(conv_out(c), seed), blinded(c.w, seed + 1),
            [&](Backend& be, const BlindedTensor& dy, const BlindedTensor& w) {
              return be.conv_backward_data(dy, w, c.p, c.x);
            });
    seed += 2;
  }
}

TEST_P(CudaVsCpu, ConvBackwardWeightsMatchesCpuWithStridesAndPadding) {
  uint32_t seed = 400;
  for (const ConvCase& c : conv_cases()) {
    compare("conv backward-weights x" + c.x.to_string() + " w" + c.w.to_string(),
            blinded(c.x, seed), blinded(conv_out(c), seed + 1),
            [&](Backend& be, const BlindedTensor& x, const BlindedTensor& dy) {
              return be.conv_backward_weights(x, dy, c.p, c.w);
            });
    seed += 2;
  }
}

TEST_P(CudaVsCpu, LargeOperandsAndResultsCrossInManyChunks) {
  // 2048x4608 fp32 result = 36 MiB: more chunks than the staging ring has slots, both ways.
  const BlindedTensor a = blinded({2048, 48}, 500), b = blinded({48, 4608}, 501);
  compare("matmul 2048x48x4608", a, b,
          [](Backend& be, const BlindedTensor& x, const BlindedTensor& y) {
            return be.matmul(x, y, false, false);
          });
  const BlindedTensor big = blinded({4608, 2048}, 502), small = blinded({2048, 3}, 503);
  compare("matmul 4608x2048x3 (36 MiB operand)", big, small,
          [](Backend& be, const BlindedTensor& x, const BlindedTensor& y) {
            return be.matmul(x, y, false, false);
          });
}

TEST_P(CudaVsCpu, LargeTensorsArePageLockedAndCrossByDmaInPlace) {
  if (const char* v = std::getenv("TEMPO_PINNED_HOST"); v && std::string(v) == "0")
    GTEST_SKIP() << "TEMPO_PINNED_HOST=0: tensors stay pageable";
  // Allocated after the backend: page-locked, so uploads and the download skip the staging ring.
  const BlindedTensor a = blinded({2048, 48}, 510), b = blinded({48, 4608}, 511);
  uint64_t before = stats_of(*gpu_).in_place_bytes;
  compare("matmul 2048x48x4608, page-locked", a, b,
          [](Backend& be, const BlindedTensor& x, const BlindedTensor& y) {
            return be.matmul(x, y, false, false);
          });
  const uint64_t result_bytes = uint64_t{2048} * 4608 * 4;
  EXPECT_EQ(stats_of(*gpu_).in_place_bytes - before,
            static_cast<uint64_t>(a.bytes() + b.bytes()) + result_bytes);

  // Pageable tensors (the default source again) take the staging ring, with the same results.
  set_large_block_source({});
  const BlindedTensor pa = blinded({2048, 48}, 512), pb = blinded({48, 4608}, 513);
  before = stats_of(*gpu_).in_place_bytes;
  compare("matmul 2048x48x4608, pageable", pa, pb,
          [](Backend& be, const BlindedTensor& x, const BlindedTensor& y) {
            return be.matmul(x, y, false, false);
          });
  EXPECT_EQ(stats_of(*gpu_).in_place_bytes, before);
}

TEST_P(CudaVsCpu, RepeatedShapesReuseTheirConvolutionPlan) {
  const ConvCase c = conv_cases()[1];
  const BlindedTensor x = blinded(c.x, 600), w = blinded(c.w, 601);
  const BlindedTensor first = gpu_->conv_forward(x, w, c.p);
  const uint64_t plans = stats_of(*gpu_).conv_plans;
  const BlindedTensor second = gpu_->conv_forward(x, w, c.p);
  EXPECT_EQ(stats_of(*gpu_).conv_plans, plans);
  // Same algorithm on the same inputs: the same bits (no atomics in a forward convolution).
  for (int64_t i = 0; i < first.numel(); ++i)
    ASSERT_EQ(first.data()[i], second.data()[i]) << "element " << i;
}

// The master's checks (docs/integrity.md) with the tolerance of the worker's precision accept
// every honest GPU result: cuDNN may only pick algorithms whose rounding the dot-product bound
// covers (cudnn_conv.cpp), and a TF32 worker needs the TF32 tolerance, which the fp32 one is not
// (the first headline run on an H200 rejected honest TF32 results 5-20x over it).
TEST_P(CudaVsCpu, IntegrityChecksAcceptHonestResultsAtTheWorkersPrecision) {
  const integrity::Precision precision =
      GetParam() == Precision::kTf32 ? integrity::Precision::kTf32 : integrity::Precision::kFp32;
  constexpr int kSigma = 8, kRounds = 4;
  int results = 0, rejected_at_fp32 = 0;
  auto check = [&](const std::string& what, const integrity::OperationSpec& spec,
                   const BlindedTensor& a, const BlindedTensor& b, const BlindedTensor& result) {
    ++results;
    const integrity::CheckOutcome ok =
        integrity::ResultCheck(spec, a, b, kRounds, precision).verify(result);
    EXPECT_TRUE(ok.passed) << what << ": " << ok.reason;
    if (!integrity::ResultCheck(spec, a, b, kRounds, integrity::Precision::kFp32)
             .verify(result)
             .passed)
      ++rejected_at_fp32;
  };
  uint32_t seed = 700;
  for (auto [m, k, n] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{
           {37, 129, 53}, {300, 513, 257}, {1024, 576, 64}})
    for (bool ta : {false, true}) {
      const BlindedTensor a = blinded(ta ? Shape{k, m} : Shape{m, k}, seed++, kSigma);
      const BlindedTensor b = blinded({k, n}, seed++, kSigma);
      check("matmul " + std::to_string(m) + "x" + std::to_string(k) + "x" + std::to_string(n),
            {Op::kMatMul, ta, false, {}, {}}, a, b, gpu_->matmul(a, b, ta, false));
    }
  {
    const BlindedTensor a = blinded({64, 197, 64}, seed++, kSigma);
    const BlindedTensor b = blinded({64, 197, 64}, seed++, kSigma);
    check("batched Q.K^T", {Op::kBatchedMatMul, false, true, {}, {}}, a, b,
          gpu_->batched_matmul(a, b, false, true));
  }
  for (const ConvCase& c : conv_cases()) {
    const BlindedTensor x = blinded(c.x, seed++, kSigma), w = blinded(c.w, seed++, kSigma);
    const BlindedTensor dy = blinded(conv_out(c), seed++, kSigma);
    check("conv forward x" + c.x.to_string(), {Op::kConvForward, false, false, c.p, {}}, x, w,
          gpu_->conv_forward(x, w, c.p));
    check("conv backward-data x" + c.x.to_string(), {Op::kConvBackwardData, false, false, c.p, c.x},
          dy, w, gpu_->conv_backward_data(dy, w, c.p, c.x));
    check("conv backward-weights x" + c.x.to_string(),
          {Op::kConvBackwardWeights, false, false, c.p, c.w}, x, dy,
          gpu_->conv_backward_weights(x, dy, c.p, c.w));
  }
  // The test can tell the tolerances apart: TF32's rounding breaks the fp32 bound somewhere.
  if (GetParam() == Precision::kTf32) {
    EXPECT_GT(rejected_at_fp32, 0) << "of " << results;
  }
}

INSTANTIATE_TEST_SUITE_P(Precisions, CudaVsCpu,
                         ::testing::Values(Precision::kFp32, Precision::kTf32),
                         [](const auto& info) { return std::string(precision_name(info.param)); });

// --- The Worker's handle cache on a CUDA backend ---

class CudaWorkerCache : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = skip_reason(); !why.empty()) GTEST_SKIP() << why;
  }

  static Request request(Op op, Operand a, Operand b) {
    Request r;
    r.id = ++next_id_;
    r.op = op;
    r.a = std::move(a);
    r.b = std::move(b);
    return r;
  }
  static inline uint64_t next_id_ = 0;
};

TEST_F(CudaWorkerCache, CachedOperandsAreNotUploadedAgainInTheBackwardPass) {
  auto backend = make_backend("cuda", 0);
  Backend& gpu = *backend;
  Worker worker(std::move(backend));
  CpuBackend cpu(2);
  const ConvCase c = conv_cases()[0];
  const BlindedTensor x = blinded(c.x, 700), w = blinded(c.w, 701);
  const BlindedTensor dy = blinded(conv_out(c), 702);

  // Forward: X' and W' go to the device once and stay there under handles 1 and 2.
  Request fwd =
      request(Op::kConvForward, Operand::inline_tensor(x, 1), Operand::inline_tensor(w, 2));
  fwd.conv = c.p;
  Response r = worker.execute(fwd);
  ASSERT_TRUE(r.ok) << r.error;
  CudaBackendStats s = stats_of(gpu);
  EXPECT_EQ(s.uploads, 2u);
  EXPECT_EQ(s.retained_tensors, 2);
  EXPECT_EQ(s.retained_bytes, x.bytes() + w.bytes());
  EXPECT_EQ(s.retained_bytes, worker.counters().cache_bytes);  // within the same bound
  EXPECT_GT(s.h2d_seconds, 0.0);
  EXPECT_GT(s.compute_seconds, 0.0);
  EXPECT_GT(s.d2h_seconds, 0.0);

  // Backward-data on cached W': only dY is uploaded.
  Request bd = request(Op::kConvBackwardData, Operand::inline_tensor(dy), Operand::cached(2));
  bd.conv = c.p;
  bd.out_shape = c.x;
  r = worker.execute(bd);
  ASSERT_TRUE(r.ok) << r.error;
  expect_close(r.result, cpu.conv_backward_data(dy, w, c.p, c.x),
               cpu.conv_backward_data(abs_of(dy), abs_of(w), c.p, c.x), tolerance(Precision::kFp32),
               "backward-data on cached W");
  s = stats_of(gpu);
  EXPECT_EQ(s.uploads, 3u);
  EXPECT_EQ(s.retained_hits, 1u);
  EXPECT_EQ(s.h2d_bytes, static_cast<uint64_t>(x.bytes() + w.bytes() + dy.bytes()));

  // Backward-weights on cached X', freeing both handles: device copies go with them.
  Request bw = request(Op::kConvBackwardWeights, Operand::cached(1), Operand::inline_tensor(dy));
  bw.conv = c.p;
  bw.out_shape = c.w;
  bw.free_handles = {1, 2};
  r = worker.execute(bw);
  ASSERT_TRUE(r.ok) << r.error;
  expect_close(r.result, cpu.conv_backward_weights(x, dy, c.p, c.w),
               cpu.conv_backward_weights(abs_of(x), abs_of(dy), c.p, c.w),
               tolerance(Precision::kFp32), "backward-weights on cached X");
  s = stats_of(gpu);
  EXPECT_EQ(s.uploads, 4u);
  EXPECT_EQ(s.retained_hits, 2u);
  EXPECT_EQ(s.retained_tensors, 0);
  EXPECT_EQ(s.retained_bytes, 0);
  EXPECT_EQ(worker.counters().cache_bytes, 0);
  EXPECT_EQ(s.ops, 3u);
  EXPECT_GE(s.busy_seconds, s.compute_seconds);
#ifdef TEMPO_HAVE_CUDA
  EXPECT_THAT(to_json(s), HasSubstr("\"retained_hits\":2,"));
#endif
}

TEST_F(CudaWorkerCache, ProductOperandCachedThenUsedTransposed) {
  // The linear layer's pattern (PROTOCOL.md section 4): Y = X·W, then dX = dY·Wᵀ on cached W.
  auto backend = make_backend("cuda", 0);
  Backend& gpu = *backend;
  Worker worker(std::move(backend));
  CpuBackend cpu(2);
  const BlindedTensor x = blinded({64, 96}, 800), w = blinded({96, 40}, 801);
  const BlindedTensor dy = blinded({64, 40}, 802);
  Response r = worker.execute(
      request(Op::kMatMul, Operand::inline_tensor(x, 10), Operand::inline_tensor(w, 11)));
  ASSERT_TRUE(r.ok) << r.error;
  Request bd = request(Op::kMatMul, Operand::inline_tensor(dy), Operand::cached(11));
  bd.trans_b = true;
  bd.free_handles = {10, 11};
  r = worker.execute(bd);
  ASSERT_TRUE(r.ok) << r.error;
  expect_close(r.result, cpu.matmul(dy, w, false, true),
               cpu.matmul(abs_of(dy), abs_of(w), false, true), tolerance(Precision::kFp32),
               "dY·Wᵀ on cached W");
  EXPECT_EQ(stats_of(gpu).retained_hits, 1u);
  EXPECT_EQ(stats_of(gpu).retained_bytes, 0);
}

TEST_F(CudaWorkerCache, CacheBoundExceededGivesTheClearErrorAndKeepsNothingOnTheDevice) {
  auto backend = make_backend("cuda", 0);
  Backend& gpu = *backend;
  WorkerLimits limits;
  limits.max_cache_bytes = 64 << 10;  // 64 KiB
  Worker worker(std::move(backend), limits);
  const BlindedTensor a = blinded({128, 256}, 900), b = blinded({256, 8}, 901);  // a: 128 KiB
  Response r =
      worker.execute(request(Op::kMatMul, Operand::inline_tensor(a, 5), Operand::inline_tensor(b)));
  ASSERT_FALSE(r.ok);
  EXPECT_THAT(r.error, HasSubstr("cache full"));
  EXPECT_THAT(r.error, HasSubstr("64.0 KiB bound"));
  EXPECT_EQ(stats_of(gpu).retained_tensors, 0);
  EXPECT_EQ(stats_of(gpu).uploads, 0u);  // rejected before anything moved
  // The worker still computes.
  r = worker.execute(request(Op::kMatMul, Operand::inline_tensor(a), Operand::inline_tensor(b)));
  EXPECT_TRUE(r.ok) << r.error;
}

TEST_F(CudaWorkerCache, WorkerOptionsSelectCudaAndPrecision) {
  WorkerOptions o;
  o.backend = "cuda:0";
  o.precision = "tf32";
  auto worker = make_worker(o);
  EXPECT_EQ(worker->capabilities().backend, "cuda:0");
  EXPECT_THAT(worker->capabilities().device, HasSubstr("tf32"));
  EXPECT_EQ(worker->capabilities().precision, "tf32");  // the master's checks size by it
}

// --- Everywhere, GPU or not ---

TEST(CudaBackendFactory, AskingForCudaWhereItIsMissingGivesTheClearError) {
  const std::string why = cuda_unavailable_reason();
#ifdef TEMPO_HAVE_CUDA
  if (!why.empty()) {
    EXPECT_THAT(why, StartsWith("no CUDA device:"));
  }
#else
  EXPECT_EQ(why,
            "this build has no CUDA backend: configure with -DTEMPO_CUDA=ON (needs the CUDA "
            "toolkit and cuDNN, docs/gpu.md)");
#endif
  // A device number no machine has fails the same clear way everywhere.
  try {
    make_backend("cuda:999");
    FAIL() << "cuda:999 was created";
  } catch (const std::exception& e) {
#ifdef TEMPO_HAVE_CUDA
    EXPECT_THAT(e.what(), StartsWith("no CUDA device"));
#else
    EXPECT_THAT(e.what(), StartsWith("this build has no CUDA backend: configure with "
                                     "-DTEMPO_CUDA=ON"));
#endif
  }
  if (!why.empty()) {
    try {
      make_backend("cuda");
      FAIL() << "cuda was created although: " << why;
    } catch (const std::exception& e) {
      EXPECT_EQ(e.what(), why);
    }
  }
}

#ifdef TEMPO_HAVE_CUDA
/// Output and exit status of a shell command.
std::pair<int, std::string> run_command(const std::string& cmd) {
  std::string out;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return {-1, out};
  char buf[4096];
  while (fgets(buf, sizeof buf, p) != nullptr) out += buf;
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}
#endif

TEST(CudaBackendFactory, TempoLoadsTheCudaLibraryOnlyWhenAskedAndSaysWhereItLooked) {
#ifdef TEMPO_HAVE_CUDA
  // The build tree's tempo. A bundle run on the GPU machine (bench/gpu/run_headline.sh) has no
  // build tree: this test is about loading, not the GPU, and runs wherever the build is.
  const std::string tempo = TEMPO_BINARY;
  if (!std::filesystem::exists(tempo))
    GTEST_SKIP() << "no build tree here: " << tempo << " is missing";
  // `tempo` itself does not depend on the CUDA libraries: a master never maps them.
  const auto [rc, needed] = run_command("readelf -d '" + tempo + "'");
  ASSERT_EQ(rc, 0) << needed;
  EXPECT_THAT(needed, Not(HasSubstr("libcudart"))) << needed;
  EXPECT_THAT(needed, Not(HasSubstr("libcublas"))) << needed;
  EXPECT_THAT(needed, Not(HasSubstr("libtempo_cuda"))) << needed;
  // A copy of tempo without libtempo_cuda.so beside it refuses "cuda" and names the paths tried.
  char dir[] = "/tmp/tempo-nocuda-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string copy = std::string(dir) + "/tempo";
  ASSERT_EQ(run_command("cp '" + tempo + "' '" + copy + "'").first, 0);
  const auto [status, out] = run_command("env -u TEMPO_CUDA_MODULE LD_LIBRARY_PATH= timeout 30 '" +
                                         copy + "' worker --listen 127.0.0.1:0 --backend cuda");
  run_command("rm -rf '" + std::string(dir) + "'");
  EXPECT_NE(status, 0) << out;
  EXPECT_THAT(out, HasSubstr("CUDA backend (libtempo_cuda.so) could not be loaded")) << out;
  EXPECT_THAT(out, HasSubstr("libtempo_cuda.so: cannot open shared object file")) << out;
#else
  GTEST_SKIP() << "built without the CUDA backend";
#endif
}

TEST(CudaBackendFactory, MalformedBackendNamesAndPrecisionsAreRejected) {
  for (const char* name : {"gpu", "cuda:", "cuda:x", "cuda:-1", "cuda0", "CUDA"}) {
    try {
      make_backend(name);
      FAIL() << name << " was accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_THAT(e.what(), HasSubstr("unknown worker backend")) << name;
    }
  }
  EXPECT_THROW(parse_precision("bf16"), std::invalid_argument);
  EXPECT_EQ(parse_precision("tf32"), Precision::kTf32);
  EXPECT_EQ(parse_precision("fp32"), Precision::kFp32);
  try {
    make_backend("cpu", 1, Precision::kTf32);
    FAIL() << "a tf32 cpu backend was created";
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(e.what(), HasSubstr("fp32 only"));
  }
}

}  // namespace
}  // namespace tempo::worker
