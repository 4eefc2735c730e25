// The untrusted worker: CPU backend products against naive references, the handle cache, the
// embedded (threaded) worker and the view recorder.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>
#include <vector>

#include "common/view_reader.h"
#include "worker/cpu_backend.h"
#include "worker/embedded_worker.h"
#include "worker/view_recorder.h"
#include "worker/worker.h"

namespace tempo::worker {
namespace {

using protocol::ConvParams;
using protocol::Op;
using protocol::Operand;
using protocol::Request;
using protocol::Response;
using ::testing::HasSubstr;

BlindedTensor random_blinded(const Shape& s, std::mt19937& rng) {
  BlindedTensor t = BlindedTensor::allocate(s);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (int64_t i = 0; i < t.numel(); ++i) t.mutable_data()[i] = dist(rng);
  return t;
}

/// Every element within 1e-4·(1 + |expected|), as fp32 sums of a few hundred terms are.
void expect_close(const BlindedTensor& got, const std::vector<double>& want) {
  ASSERT_EQ(got.numel(), static_cast<int64_t>(want.size()));
  for (int64_t i = 0; i < got.numel(); ++i)
    ASSERT_NEAR(got.data()[i], want[static_cast<size_t>(i)],
                1e-4 * (1.0 + std::abs(want[static_cast<size_t>(i)])))
        << "element " << i;
}

/// A[r][c] of a row-major rows×cols matrix, read as op(A) when `trans`.
double at(const float* a, int64_t cols, bool trans, int64_t r, int64_t c) {
  return trans ? a[c * cols + r] : a[r * cols + c];
}

std::vector<double> naive_matmul(const float* a, const float* b, int64_t m, int64_t n, int64_t k,
                                 bool ta, bool tb) {
  std::vector<double> c(static_cast<size_t>(m * n), 0.0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t p = 0; p < k; ++p)
        s += at(a, ta ? m : k, ta, i, p) * at(b, tb ? k : n, tb, p, j);
      c[static_cast<size_t>(i * n + j)] = s;
    }
  return c;
}

/// Visits every (input pixel, output pixel, kernel tap) triple of a convolution.
template <typename F>
void for_each_tap(const Shape& x, const Shape& w, const ConvParams& p, F f) {
  const int64_t oh = (x[2] + 2 * p.pad_h - w[2]) / p.stride_h + 1;
  const int64_t ow = (x[3] + 2 * p.pad_w - w[3]) / p.stride_w + 1;
  for (int64_t n = 0; n < x[0]; ++n)
    for (int64_t o = 0; o < w[0]; ++o)
      for (int64_t i = 0; i < oh; ++i)
        for (int64_t j = 0; j < ow; ++j)
          for (int64_t c = 0; c < x[1]; ++c)
            for (int64_t ki = 0; ki < w[2]; ++ki)
              for (int64_t kj = 0; kj < w[3]; ++kj) {
                const int64_t h = i * p.stride_h - p.pad_h + ki, v = j * p.stride_w - p.pad_w + kj;
                if (h < 0 || h >= x[2] || v < 0 || v >= x[3]) continue;
                const int64_t xi = ((n * x[1] + c) * x[2] + h) * x[3] + v;
                const int64_t yi = ((n * w[0] + o) * oh + i) * ow + j;
                const int64_t wi = ((o * w[1] + c) * w[2] + ki) * w[3] + kj;
                f(xi, yi, wi);
              }
}

Shape conv_out(const Shape& x, const Shape& w, const ConvParams& p) {
  return {x[0], w[0], (x[2] + 2 * p.pad_h - w[2]) / p.stride_h + 1,
          (x[3] + 2 * p.pad_w - w[3]) / p.stride_w + 1};
}

Request matmul_request(uint64_t id, Operand a, Operand b) {
  Request r;
  r.id = id;
  r.op = Op::kMatMul;
  r.a = std::move(a);
  r.b = std::move(b);
  return r;
}

std::vector<double> product_of(const BlindedTensor& a, const BlindedTensor& b) {
  return naive_matmul(a.data(), b.data(), a.dim(0), b.dim(1), a.dim(1), false, false);
}

TEST(CpuBackend, MatmulMatchesNaiveProductForEveryTransposeCombination) {
  std::mt19937 rng(1);
  CpuBackend be(2);
  const int64_t m = 13, n = 7, k = 29;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      BlindedTensor a = random_blinded(ta ? Shape{k, m} : Shape{m, k}, rng);
      BlindedTensor b = random_blinded(tb ? Shape{n, k} : Shape{k, n}, rng);
      BlindedTensor c = be.matmul(a, b, ta, tb);
      EXPECT_EQ(c.shape(), (Shape{m, n}));
      expect_close(c, naive_matmul(a.data(), b.data(), m, n, k, ta, tb));
    }
}

TEST(CpuBackend, BatchedMatmulMatchesNaiveProductPerBatchItem) {
  std::mt19937 rng(2);
  CpuBackend be(2);
  const int64_t m = 5, n = 6, k = 9;
  // One item (threads run inside the GEMM) and many items (threads run over the batch).
  for (int64_t batch : {1, 7})
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        BlindedTensor a = random_blinded(ta ? Shape{batch, k, m} : Shape{batch, m, k}, rng);
        BlindedTensor b = random_blinded(tb ? Shape{batch, n, k} : Shape{batch, k, n}, rng);
        BlindedTensor c = be.batched_matmul(a, b, ta, tb);
        ASSERT_EQ(c.shape(), (Shape{batch, m, n}));
        std::vector<double> want;
        for (int64_t i = 0; i < batch; ++i) {
          auto one = naive_matmul(a.data() + i * m * k, b.data() + i * k * n, m, n, k, ta, tb);
          want.insert(want.end(), one.begin(), one.end());
        }
        expect_close(c, want);
      }
}

struct ConvCase {
  Shape x, w;
  ConvParams p;
};

// Strided, padded, non-square, 1x1, a stride that leaves input rows unused, and more.
const ConvCase kConvCases[] = {
    {{2, 3, 7, 6}, {4, 3, 3, 2}, {2, 1, 1, 0}},
    {{3, 5, 4, 4}, {6, 5, 1, 1}, {1, 1, 0, 0}},
    {{1, 2, 8, 9}, {3, 2, 3, 3}, {3, 2, 1, 2}},
    {{2, 2, 2, 3}, {2, 2, 3, 3}, {1, 2, 4, 2}},     // padding wider than the kernel
    {{4, 32, 6, 6}, {48, 32, 3, 3}, {1, 1, 1, 1}},  // channel counts that oneDNN blocks
};

TEST(CpuBackend, ConvForwardMatchesNaiveConvolution) {
  std::mt19937 rng(3);
  CpuBackend be(2);
  for (const ConvCase& cc : kConvCases) {
    BlindedTensor x = random_blinded(cc.x, rng), w = random_blinded(cc.w, rng);
    BlindedTensor y = be.conv_forward(x, w, cc.p);
    ASSERT_EQ(y.shape(), conv_out(cc.x, cc.w, cc.p));
    std::vector<double> want(static_cast<size_t>(y.numel()), 0.0);
    for_each_tap(cc.x, cc.w, cc.p, [&](int64_t xi, int64_t yi, int64_t wi) {
      want[static_cast<size_t>(yi)] += double(x.data()[xi]) * w.data()[wi];
    });
    expect_close(y, want);
  }
}

TEST(CpuBackend, ConvBackwardDataMatchesNaiveAdjoint) {
  std::mt19937 rng(4);
  CpuBackend be(2);
  for (const ConvCase& cc : kConvCases) {
    BlindedTensor w = random_blinded(cc.w, rng);
    BlindedTensor dy = random_blinded(conv_out(cc.x, cc.w, cc.p), rng);
    BlindedTensor dx = be.conv_backward_data(dy, w, cc.p, cc.x);
    ASSERT_EQ(dx.shape(), cc.x);
    std::vector<double> want(static_cast<size_t>(dx.numel()), 0.0);
    for_each_tap(cc.x, cc.w, cc.p, [&](int64_t xi, int64_t yi, int64_t wi) {
      want[static_cast<size_t>(xi)] += double(dy.data()[yi]) * w.data()[wi];
    });
    expect_close(dx, want);
  }
}

TEST(CpuBackend, ConvBackwardWeightsMatchesNaiveAdjoint) {
  std::mt19937 rng(5);
  CpuBackend be(2);
  for (const ConvCase& cc : kConvCases) {
    BlindedTensor x = random_blinded(cc.x, rng);
    BlindedTensor dy = random_blinded(conv_out(cc.x, cc.w, cc.p), rng);
    BlindedTensor dw = be.conv_backward_weights(x, dy, cc.p, cc.w);
    ASSERT_EQ(dw.shape(), cc.w);
    std::vector<double> want(static_cast<size_t>(dw.numel()), 0.0);
    for_each_tap(cc.x, cc.w, cc.p, [&](int64_t xi, int64_t yi, int64_t wi) {
      want[static_cast<size_t>(wi)] += double(dy.data()[yi]) * x.data()[xi];
    });
    expect_close(dw, want);
  }
}

TEST(DnnlConv, ReusesOnePrimitivePerDirectionAndShape) {
  std::mt19937 rng(6);
  DnnlConv conv;
  const Shape xs{2, 3, 5, 5}, ws{4, 3, 3, 3};
  const ConvParams p{1, 1, 1, 1};
  BlindedTensor x = random_blinded(xs, rng), w = random_blinded(ws, rng);
  BlindedTensor y1 = BlindedTensor::allocate(conv_out(xs, ws, p)), y2 = y1.clone();
  conv.forward(x.data(), xs, w.data(), ws, p, y1.mutable_data());
  conv.forward(x.data(), xs, w.data(), ws, p, y2.mutable_data());
  EXPECT_EQ(conv.cached_primitives(), 1u);
  for (int64_t i = 0; i < y1.numel(); ++i) ASSERT_EQ(y1.data()[i], y2.data()[i]);
  BlindedTensor dx = BlindedTensor::allocate(xs);
  conv.backward_data(y1.data(), w.data(), ws, p, dx.mutable_data(), xs);
  EXPECT_EQ(conv.cached_primitives(), 2u);
  conv.forward(x.data(), xs, w.data(), ws, ConvParams{2, 2, 1, 1}, y1.mutable_data());
  EXPECT_EQ(conv.cached_primitives(), 3u);
}

TEST(Worker, ComputesEachOpThroughRequests) {
  std::mt19937 rng(7);
  Worker worker(make_backend("cpu", 2));
  BlindedTensor a = random_blinded({4, 6}, rng), b = random_blinded({6, 3}, rng);
  Response r =
      worker.execute(matmul_request(11, Operand::inline_tensor(a), Operand::inline_tensor(b)));
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.id, 11u);
  expect_close(r.result, product_of(a, b));

  const ConvCase& cc = kConvCases[0];
  BlindedTensor x = random_blinded(cc.x, rng), w = random_blinded(cc.w, rng);
  BlindedTensor dy = random_blinded(conv_out(cc.x, cc.w, cc.p), rng);
  CpuBackend be(2);
  Request fwd;
  fwd.id = 12;
  fwd.op = Op::kConvForward;
  fwd.a = Operand::inline_tensor(x);
  fwd.b = Operand::inline_tensor(w);
  fwd.conv = cc.p;
  Response y = worker.execute(fwd);
  ASSERT_TRUE(y.ok) << y.error;
  BlindedTensor want = be.conv_forward(x, w, cc.p);
  for (int64_t i = 0; i < want.numel(); ++i) ASSERT_EQ(y.result.data()[i], want.data()[i]);

  Request bd = fwd;
  bd.op = Op::kConvBackwardData;
  bd.a = Operand::inline_tensor(dy);
  bd.out_shape = cc.x;
  Response dx = worker.execute(bd);
  ASSERT_TRUE(dx.ok) << dx.error;
  EXPECT_EQ(dx.result.shape(), cc.x);

  Request bw = fwd;
  bw.op = Op::kConvBackwardWeights;
  bw.b = Operand::inline_tensor(dy);
  bw.out_shape = cc.w;
  Response dw = worker.execute(bw);
  ASSERT_TRUE(dw.ok) << dw.error;
  BlindedTensor want_dw = be.conv_backward_weights(x, dy, cc.p, cc.w);
  for (int64_t i = 0; i < want_dw.numel(); ++i) ASSERT_EQ(dw.result.data()[i], want_dw.data()[i]);
}

TEST(Worker, KeepsOperandsSentWithAHandleAndFreesThemAfterTheOp) {
  std::mt19937 rng(8);
  Worker worker(make_backend("cpu", 2));
  // Forward: X' and W' cached under handles 1 and 2.
  BlindedTensor x = random_blinded({5, 4}, rng), w = random_blinded({4, 3}, rng);
  ASSERT_TRUE(
      worker.execute(matmul_request(1, Operand::inline_tensor(x, 1), Operand::inline_tensor(w, 2)))
          .ok);
  EXPECT_EQ(worker.counters().cached_tensors, 2);
  EXPECT_EQ(worker.counters().cache_bytes, x.bytes() + w.bytes());

  // Backward dX' = dY'·W'ᵀ with W' by handle, then free it with the same request.
  BlindedTensor dy = random_blinded({5, 3}, rng);
  Request bx = matmul_request(2, Operand::inline_tensor(dy), Operand::cached(2));
  bx.trans_b = true;
  bx.free_handles = {2};
  Response dx = worker.execute(bx);
  ASSERT_TRUE(dx.ok) << dx.error;
  expect_close(dx.result, naive_matmul(dy.data(), w.data(), 5, 4, 3, false, true));
  EXPECT_EQ(worker.counters().cached_tensors, 1);
  EXPECT_EQ(worker.counters().cache_bytes, x.bytes());

  // dW' = X'ᵀ·dY' with X' by handle.
  Request bw = matmul_request(3, Operand::cached(1), Operand::inline_tensor(dy));
  bw.trans_a = true;
  Response dw = worker.execute(bw);
  ASSERT_TRUE(dw.ok) << dw.error;
  expect_close(dw.result, naive_matmul(x.data(), dy.data(), 4, 3, 5, true, false));

  // kFree drops X'; using it afterwards is an error, and the handle may be reused.
  Request f;
  f.id = 4;
  f.op = Op::kFree;
  f.free_handles = {1};
  ASSERT_TRUE(worker.execute(f).ok);
  EXPECT_EQ(worker.counters().cached_tensors, 0);
  EXPECT_EQ(worker.counters().cache_bytes, 0);
  EXPECT_EQ(worker.counters().cache_peak_bytes, x.bytes() + w.bytes());
  Response gone = worker.execute(bw);
  EXPECT_FALSE(gone.ok);
  EXPECT_THAT(gone.error, HasSubstr("unknown handle 1"));
  EXPECT_TRUE(
      worker.execute(matmul_request(5, Operand::inline_tensor(x, 1), Operand::inline_tensor(w)))
          .ok);
}

TEST(Worker, RejectsAPutThatWouldOverflowTheCacheBoundAndSaysHowFull) {
  std::mt19937 rng(9);
  WorkerLimits limits;
  limits.max_cache_bytes = 64 * 1024;
  Worker worker(make_backend("cpu", 1), limits);
  BlindedTensor big = random_blinded({60, 256}, rng);  // 60 KiB
  BlindedTensor one = random_blinded({256, 1}, rng);
  ASSERT_TRUE(
      worker.execute(matmul_request(1, Operand::inline_tensor(big, 3), Operand::inline_tensor(one)))
          .ok);
  BlindedTensor five = random_blinded({5, 256}, rng);  // 5 KiB: 1 KiB too many
  Response r = worker.execute(
      matmul_request(2, Operand::inline_tensor(five, 17), Operand::inline_tensor(one)));
  EXPECT_FALSE(r.ok);
  EXPECT_THAT(r.error, HasSubstr("matmul: cache full: putting handle 17 (5.0 KiB) would exceed "
                                 "the 64.0 KiB bound; 60.0 KiB in use"));
  EXPECT_EQ(worker.counters().cached_tensors, 1);
  // Once handle 3 is freed the same put fits.
  Request f;
  f.op = Op::kFree;
  f.free_handles = {3};
  ASSERT_TRUE(worker.execute(f).ok);
  Response again = worker.execute(
      matmul_request(3, Operand::inline_tensor(five, 17), Operand::inline_tensor(one)));
  EXPECT_TRUE(again.ok) << again.error;
}

TEST(Worker, ReportsCapabilitiesAndCountsTraffic) {
  std::mt19937 rng(10);
  WorkerLimits limits;
  limits.max_tensor_bytes = 1 << 20;
  limits.max_cache_bytes = 8 << 20;
  Worker worker(make_backend("cpu", 2), limits);
  const protocol::Capabilities c = worker.capabilities();
  EXPECT_EQ(c.protocol_version, protocol::kProtocolVersion);
  EXPECT_EQ(c.backend, "cpu");
  EXPECT_THAT(c.device, HasSubstr("CPU"));
  EXPECT_EQ(c.max_tensor_bytes, 1 << 20);
  EXPECT_EQ(c.max_cache_bytes, 8 << 20);

  BlindedTensor a = random_blinded({8, 16}, rng), b = random_blinded({16, 4}, rng);
  ASSERT_TRUE(
      worker.execute(matmul_request(1, Operand::inline_tensor(a), Operand::inline_tensor(b))).ok);
  EXPECT_FALSE(
      worker.execute(matmul_request(2, Operand::inline_tensor(a), Operand::inline_tensor(a))).ok);
  const WorkerCounters n = worker.counters();
  EXPECT_EQ(n.requests, 2u);
  EXPECT_EQ(n.failed, 1u);
  EXPECT_EQ(n.bytes_in, static_cast<uint64_t>(a.bytes() + b.bytes() + 2 * a.bytes()));
  EXPECT_EQ(n.bytes_out, 8u * 4u * sizeof(float));
}

class EmbeddedDispatchTest : public ::testing::TestWithParam<EmbeddedDispatch> {};
INSTANTIATE_TEST_SUITE_P(Dispatch, EmbeddedDispatchTest,
                         ::testing::Values(EmbeddedDispatch::kThread, EmbeddedDispatch::kInline),
                         [](const auto& info) {
                           return info.param == EmbeddedDispatch::kThread ? "Thread" : "Inline";
                         });

TEST_P(EmbeddedDispatchTest, ExecutesRequestsInSubmissionOrder) {
  std::mt19937 rng(11);
  EmbeddedWorker ew(std::make_unique<Worker>(make_backend("cpu", 2)), GetParam());
  // Each request puts a handle that the next one uses before anyone waited for a response:
  // this only works if the queue is FIFO.
  const int kSteps = 20;
  std::vector<BlindedTensor> as, bs;
  std::vector<std::future<Response>> futures;
  for (int i = 0; i < kSteps; ++i) {
    as.push_back(random_blinded({3, 4}, rng));
    bs.push_back(random_blinded({4, 2}, rng));
    Request r = matmul_request(100 + i, Operand::inline_tensor(as.back(), 1000 + i),
                               Operand::inline_tensor(bs.back()));
    if (i > 0) r.free_handles = {static_cast<protocol::Handle>(1000 + i - 1)};
    futures.push_back(ew.submit(r));
    Request use =
        matmul_request(200 + i, Operand::cached(1000 + i), Operand::inline_tensor(bs.back()));
    futures.push_back(ew.submit(use));
  }
  for (int i = 0; i < kSteps; ++i) {
    Response put = futures[2 * i].get(), use = futures[2 * i + 1].get();
    ASSERT_TRUE(put.ok) << put.error;
    ASSERT_TRUE(use.ok) << use.error;
    EXPECT_EQ(put.id, 100u + i);
    EXPECT_EQ(use.id, 200u + i);
    expect_close(use.result, product_of(as[i], bs[i]));
  }
  EXPECT_EQ(ew.counters().cached_tensors, 1);
  EXPECT_EQ(ew.capabilities().backend, "cpu");
}

TEST_P(EmbeddedDispatchTest, AnswersEverythingSubmittedBeforeShutdownAndRefusesAfter) {
  std::mt19937 rng(12);
  auto ew = std::make_unique<EmbeddedWorker>(std::make_unique<Worker>(make_backend("cpu", 1)),
                                             GetParam());
  BlindedTensor a = random_blinded({16, 16}, rng);
  std::vector<std::future<Response>> futures;
  for (int i = 0; i < 50; ++i)
    futures.push_back(
        ew->submit(matmul_request(i, Operand::inline_tensor(a), Operand::inline_tensor(a))));
  ew->shutdown();
  for (auto& f : futures) {
    ASSERT_EQ(f.wait_for(std::chrono::seconds(0)), std::future_status::ready);
    EXPECT_TRUE(f.get().ok);
  }
  Response late =
      ew->submit(matmul_request(99, Operand::inline_tensor(a), Operand::inline_tensor(a))).get();
  EXPECT_FALSE(late.ok);
  EXPECT_EQ(late.id, 99u);
  EXPECT_THAT(late.error, HasSubstr("shut down"));
  ew.reset();  // a second shutdown from the destructor is harmless
}

TEST(EmbeddedWorker, InlineDispatchAnswersBeforeSubmitReturns) {
  std::mt19937 rng(13);
  EmbeddedWorker ew(std::make_unique<Worker>(make_backend("cpu", 1)), EmbeddedDispatch::kInline);
  const BlindedTensor a = random_blinded({5, 7}, rng), b = random_blinded({7, 3}, rng);
  std::future<Response> f =
      ew.submit(matmul_request(7, Operand::inline_tensor(a), Operand::inline_tensor(b)));
  ASSERT_EQ(f.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  const Response r = f.get();
  ASSERT_TRUE(r.ok) << r.error;
  expect_close(r.result, product_of(a, b));
  // A request the worker rejects is answered at once too, and the worker keeps serving.
  const Response bad =
      ew.submit(matmul_request(8, Operand::inline_tensor(a), Operand::inline_tensor(a))).get();
  EXPECT_FALSE(bad.ok);
  EXPECT_TRUE(
      ew.submit(matmul_request(9, Operand::inline_tensor(a), Operand::inline_tensor(b))).get().ok);
}

TEST(EmbeddedWorker, DispatchDefaultsToInlineForTheCpuBackendOnly) {
  EXPECT_EQ(default_dispatch("cpu"), EmbeddedDispatch::kInline);
  EXPECT_EQ(default_dispatch("cuda"), EmbeddedDispatch::kThread);
  EXPECT_EQ(default_dispatch("cuda:1"), EmbeddedDispatch::kThread);
  EXPECT_EQ(parse_dispatch("auto", "cpu"), EmbeddedDispatch::kInline);
  EXPECT_EQ(parse_dispatch("auto", "cuda:0"), EmbeddedDispatch::kThread);
  EXPECT_EQ(parse_dispatch("thread", "cpu"), EmbeddedDispatch::kThread);
  EXPECT_EQ(parse_dispatch("inline", "cuda"), EmbeddedDispatch::kInline);
  EXPECT_THROW(parse_dispatch("sync", "cpu"), std::invalid_argument);
}

class ViewRecorderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("tempo_view_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

void expect_same(const BlindedTensor& a, const BlindedTensor& b) {
  ASSERT_EQ(a.shape(), b.shape());
  for (int64_t i = 0; i < a.numel(); ++i) ASSERT_EQ(a.data()[i], b.data()[i]) << i;
}

TEST_F(ViewRecorderTest, RecordsEveryReceivedTensorWithItsMetadata) {
  std::mt19937 rng(13);
  WorkerOptions o;
  o.threads = 1;
  o.record_view_dir = dir_.string();
  std::unique_ptr<Worker> worker = make_worker(o);
  BlindedTensor x = random_blinded({2, 3, 5, 5}, rng), w = random_blinded({4, 3, 3, 3}, rng);
  Request fwd;
  fwd.id = 41;
  fwd.op = Op::kConvForward;
  fwd.a = Operand::inline_tensor(x, 7);
  fwd.b = Operand::inline_tensor(w, 8);
  ASSERT_TRUE(worker->execute(fwd).ok);
  BlindedTensor dy = random_blinded({2, 4, 3, 3}, rng);
  Request bwd;
  bwd.id = 42;
  bwd.op = Op::kConvBackwardWeights;
  bwd.a = Operand::cached(7);  // cached: not received again, not recorded again
  bwd.b = Operand::inline_tensor(dy);
  bwd.out_shape = w.shape();
  ASSERT_TRUE(worker->execute(bwd).ok);
  EXPECT_EQ(worker->recorder()->records(), 3u);

  ViewReader view(dir_.string());
  EXPECT_FALSE(view.truncated());
  ASSERT_EQ(view.size(), 3u);
  EXPECT_EQ(view[0].request_id, 41u);
  EXPECT_EQ(view[0].op, Op::kConvForward);
  EXPECT_EQ(view[0].role, 'a');
  EXPECT_EQ(view[0].handle, 7u);
  EXPECT_EQ(view[0].shape, x.shape());
  EXPECT_EQ(view[1].role, 'b');
  EXPECT_EQ(view[1].handle, 8u);
  EXPECT_EQ(view[2].request_id, 42u);
  EXPECT_EQ(view[2].op, Op::kConvBackwardWeights);
  EXPECT_EQ(view[2].role, 'b');
  EXPECT_EQ(view[2].handle, 0u);
  expect_same(view.load(0), x);
  expect_same(view.load(1), w);
  expect_same(view.load(2), dy);
}

TEST_F(ViewRecorderTest, ReaderSkipsARecordCutShortByACrash) {
  std::mt19937 rng(14);
  std::string file;
  {
    ViewRecorder rec(dir_.string());
    file = rec.file();
    rec.record(1, Op::kMatMul, 'a', 0, random_blinded({3, 3}, rng));
    rec.record(2, Op::kMatMul, 'b', 5, random_blinded({3, 3}, rng));
  }
  std::filesystem::resize_file(file, std::filesystem::file_size(file) - 4);
  ViewReader view(file);
  EXPECT_TRUE(view.truncated());
  ASSERT_EQ(view.size(), 1u);
  EXPECT_EQ(view[0].request_id, 1u);
}

TEST_F(ViewRecorderTest, ReaderRejectsAFileThatIsNotAView) {
  std::filesystem::create_directories(dir_);
  std::ofstream(dir_ / "view.tvw") << "definitely not a view";
  EXPECT_THROW(ViewReader(dir_.string()), std::runtime_error);
}

TEST_F(ViewRecorderTest, RecordsFromConcurrentThreadsNeverInterleave) {
  std::mt19937 rng(15);
  BlindedTensor t = random_blinded({64, 64}, rng);
  {
    ViewRecorder rec(dir_.string());
    std::vector<std::thread> threads;
    for (int k = 0; k < 4; ++k)
      threads.emplace_back([&rec, &t, k] {
        for (int i = 0; i < 25; ++i) rec.record(k * 100 + i, Op::kMatMul, 'a', 0, t);
      });
    for (auto& th : threads) th.join();
    EXPECT_EQ(rec.records(), 100u);
  }
  ViewReader view(dir_.string());
  ASSERT_EQ(view.size(), 100u);
  EXPECT_FALSE(view.truncated());
  expect_same(view.load(57), t);
}

}  // namespace
}  // namespace tempo::worker
