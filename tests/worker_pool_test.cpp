// Several workers behind one WorkerPool: batch shares, routing to cached operands, failover when a
// worker dies (in-flight work re-sent, cached operands re-uploaded), re-admission, quarantine; and
// the offload engine over 1 and 3 workers giving the same results as over the embedded one.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "master/core/random.h"
#include "master/nn/plain_compute.h"
#include "master/offload/offload_engine.h"
#include "master/offload/tempo_compute.h"
#include "master/offload/worker_pool.h"
#include "worker/embedded_worker.h"

namespace tempo::offload {
namespace {

using protocol::Op;
using protocol::Operand;
using protocol::Request;
using protocol::Response;

worker::WorkerOptions cpu_worker() {
  worker::WorkerOptions o;
  o.threads = 1;
  return o;
}

/// An embedded worker that can be "killed": from then on (and for requests it holds back) it
/// answers as a broken session does. It can hold requests back to keep them in flight, and
/// count what it computed.
class KillableChannel final : public WorkerChannel {
 public:
  KillableChannel() : inner_(cpu_worker()) {}
  std::future<Response> submit(Request r) override {
    if (delay_.count()) std::this_thread::sleep_for(delay_);  // a slow link
    std::lock_guard lock(mu_);
    if (++received_ == 1) first_b_ = r.b.tensor;
    if (dead_) return failed(r.id);
    if (hold_) {
      held_.emplace_back(std::move(r), std::promise<Response>());
      return held_.back().second.get_future();
    }
    return inner_.submit(std::move(r));
  }
  protocol::Capabilities capabilities() override { return inner_.capabilities(); }
  worker::WorkerCounters counters() const { return inner_.counters(); }
  void slow_down(std::chrono::milliseconds d) { delay_ = d; }
  void hold() {
    std::lock_guard lock(mu_);
    hold_ = true;
  }
  /// Breaks the "session": held requests and every later one fail as unavailable.
  void kill() {
    std::lock_guard lock(mu_);
    dead_ = true;
    for (auto& [r, p] : held_) p.set_value(failed(r.id).get());
    held_.clear();
  }
  int received() {
    std::lock_guard lock(mu_);
    return received_;
  }
  /// The inline second operand of the first request (the blinded weights of a forward).
  const BlindedTensor& first_b() {
    std::lock_guard lock(mu_);
    return first_b_;
  }

 private:
  static std::future<Response> failed(uint64_t id) {
    Response r;
    r.id = id;
    r.ok = false;
    r.unavailable = true;
    r.error = "killed";
    std::promise<Response> p;
    p.set_value(r);
    return p.get_future();
  }
  worker::EmbeddedWorker inner_;
  std::mutex mu_;
  bool dead_ = false, hold_ = false;
  int received_ = 0;
  std::deque<std::pair<Request, std::promise<Response>>> held_;
  BlindedTensor first_b_;
  std::chrono::milliseconds delay_{0};
};

BlindedTensor random_blinded(const Shape& s, uint64_t seed) {
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::normal_distribution<float> d;
  BlindedTensor t = BlindedTensor::allocate(s);
  for (int64_t i = 0; i < t.numel(); ++i) t.mutable_data()[i] = d(rng);
  return t;
}

Request matmul(BlindedTensor a, BlindedTensor b, protocol::Handle keep_a = 0) {
  Request r;
  r.op = Op::kMatMul;
  r.a = Operand::inline_tensor(std::move(a), keep_a);
  r.b = Operand::inline_tensor(std::move(b));
  return r;
}

std::vector<WorkerPool::Member> members(const std::vector<std::shared_ptr<KillableChannel>>& cs) {
  std::vector<WorkerPool::Member> m;
  for (size_t i = 0; i < cs.size(); ++i) {
    std::string name = "w";  // (not "w" + ...: GCC 12's -Wrestrict false positive)
    name += std::to_string(i);
    m.push_back({name, cs[i], nullptr});
  }
  return m;
}

std::vector<std::shared_ptr<KillableChannel>> channels(int n) {
  std::vector<std::shared_ptr<KillableChannel>> cs;
  for (int i = 0; i < n; ++i) cs.push_back(std::make_shared<KillableChannel>());
  return cs;
}

void expect_same(const BlindedTensor& a, const BlindedTensor& b) {
  ASSERT_EQ(a.shape(), b.shape());
  for (int64_t i = 0; i < a.numel(); ++i) ASSERT_EQ(a.data()[i], b.data()[i]) << i;
}

TEST(WorkerPool, UnmeasuredWorkersShareABatchEquallyInContiguousShards) {
  auto cs = channels(3);
  WorkerPool pool(members(cs));
  auto shards = pool.plan_shards(10);
  ASSERT_EQ(shards.size(), 3u);
  int64_t at = 0;
  std::vector<int64_t> rows(3);
  for (const auto& s : shards) {
    EXPECT_EQ(s.begin, at);
    at = s.end;
    rows[static_cast<size_t>(s.worker)] += s.end - s.begin;
  }
  EXPECT_EQ(at, 10);
  EXPECT_EQ(
      *std::max_element(rows.begin(), rows.end()) - *std::min_element(rows.begin(), rows.end()), 1);
}

TEST(WorkerPool, PipelineChunksGiveEachWorkerSeveralShardsAndNoneEmpty) {
  auto cs = channels(2);
  WorkerPool pool(members(cs));
  auto shards = pool.plan_shards(9, 3);
  ASSERT_EQ(shards.size(), 6u);
  EXPECT_EQ(shards.front().worker, 0);
  EXPECT_EQ(shards[1].worker, 1);  // interleaved: every worker starts early
  for (const auto& s : shards) EXPECT_LT(s.begin, s.end);
  EXPECT_EQ(shards.back().end, 9);
  // Fewer rows than workers: one row each for the first ones.
  EXPECT_EQ(pool.plan_shards(1).size(), 1u);
}

TEST(WorkerPool, AFasterWorkerGetsALargerShareOnceMeasured) {
  // The same requests to both; worker 0's link adds 20 ms to each, far more than the product.
  auto cs = channels(2);
  cs[0]->slow_down(std::chrono::milliseconds(20));
  WorkerPool pool(members(cs));
  for (int i = 0; i < 4; ++i)
    for (int w : {0, 1}) {
      auto p = pool.submit(matmul(random_blinded({64, 64}, 1), random_blinded({64, 64}, 2)), w);
      ASSERT_TRUE(p.get().ok);
    }
  auto shards = pool.plan_shards(100);
  int64_t rows0 = 0, rows1 = 0;
  for (const auto& s : shards) (s.worker == 0 ? rows0 : rows1) += s.end - s.begin;
  EXPECT_GT(rows1, 2 * rows0) << pool.describe();
}

TEST(WorkerPool, ARequestNamingACachedOperandGoesToTheWorkerHoldingIt) {
  auto cs = channels(2);
  WorkerPool pool(members(cs));
  auto first = pool.submit(matmul(random_blinded({4, 5}, 1), random_blinded({5, 3}, 2), 42), 1);
  ASSERT_TRUE(first.get().ok);
  EXPECT_EQ(first.worker(), 1);
  Request again;
  again.op = Op::kMatMul;
  again.a = Operand::cached(42);
  again.b = Operand::inline_tensor(random_blinded({5, 2}, 3));
  again.free_handles = {42};
  auto second = pool.submit(std::move(again), 0);  // hint 0, but the operand is on worker 1
  Response r = second.get();
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(second.worker(), 1);
}

TEST(WorkerPool, AFreeOfAHandleAnotherWorkerHoldsIsForwardedToIt) {
  // After a failover a layer's two cached operands can sit on different workers; the request
  // that frees both goes to one of them, and the other must still drop its copy.
  auto cs = channels(2);
  WorkerPool pool(members(cs));
  auto on0 = pool.submit(matmul(random_blinded({4, 5}, 1), random_blinded({5, 3}, 2), 7), 0);
  auto on1 = pool.submit(matmul(random_blinded({4, 5}, 3), random_blinded({5, 3}, 4), 8), 1);
  ASSERT_TRUE(on0.get().ok);
  ASSERT_TRUE(on1.get().ok);
  ASSERT_EQ(on0.worker(), 0);
  ASSERT_EQ(on1.worker(), 1);
  ASSERT_EQ(cs[1]->counters().cached_tensors, 1);
  Request last;
  last.op = Op::kMatMul;
  last.a = Operand::cached(7);
  last.b = Operand::inline_tensor(random_blinded({5, 2}, 5));
  last.free_handles = {7, 8};
  auto pending = pool.submit(std::move(last), 0);
  const Response r = pending.get();
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(pending.worker(), 0);
  // Worker 1 runs its requests in order: once a later one is answered, the free has run.
  auto later = pool.submit(matmul(random_blinded({2, 5}, 6), random_blinded({5, 2}, 7)), 1);
  ASSERT_TRUE(later.get().ok);
  ASSERT_EQ(later.worker(), 1);
  EXPECT_EQ(cs[0]->counters().cached_tensors, 0);
  EXPECT_EQ(cs[1]->counters().cached_tensors, 0);
  EXPECT_EQ(pool.counters().frees_forwarded, 1);
}

TEST(WorkerPool, InFlightWorkOfAKilledWorkerIsResentAndItsCachedOperandsReuploaded) {
  auto cs = channels(2);
  WorkerPool pool(members(cs));
  const BlindedTensor a = random_blinded({6, 7}, 1), b = random_blinded({7, 5}, 2);
  const BlindedTensor c = random_blinded({7, 3}, 3);
  auto forward = pool.submit(matmul(a, b, 7), 0);
  const Response y = forward.get();
  ASSERT_TRUE(y.ok);
  ASSERT_EQ(forward.worker(), 0);
  cs[0]->hold();
  Request backward;
  backward.op = Op::kMatMul;
  backward.a = Operand::cached(7);
  backward.b = Operand::inline_tensor(c);
  backward.free_handles = {7};
  auto pending = pool.submit(std::move(backward), 0);
  cs[0]->kill();  // dies with the request in flight
  const Response r = pending.get();
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(pending.worker(), 1);
  // The same product as computed directly on a live worker.
  worker::EmbeddedWorker reference(cpu_worker());
  expect_same(r.result, reference.submit(matmul(a, c)).get().result);
  const auto counters = pool.counters();
  EXPECT_EQ(counters.deaths, 1);
  EXPECT_EQ(counters.resent, 1);
  EXPECT_EQ(counters.reuploaded, 1);
  EXPECT_EQ(pool.live_count(), 1);
}

TEST(WorkerPool, WithNoWorkerLeftAResponseSaysSoAndNamesEachWorker) {
  auto cs = channels(2);
  WorkerPool pool(members(cs));
  cs[0]->kill();
  cs[1]->kill();
  auto p = pool.submit(matmul(random_blinded({2, 2}, 1), random_blinded({2, 2}, 2)));
  const Response r = p.get();
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(r.unavailable);
  EXPECT_NE(r.error.find("no worker left"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("w0: killed"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("w1: killed"), std::string::npos) << r.error;
  EXPECT_TRUE(pool.plan_shards(8).empty());
}

TEST(WorkerPool, ADeadWorkerIsReadmittedWithANewSessionWhenItAnswersAgain) {
  auto dead = std::make_shared<KillableChannel>();
  auto fresh = std::make_shared<KillableChannel>();
  std::atomic<int> attempts{0};
  std::vector<WorkerPool::Member> m;
  m.push_back({"w0", dead, [&]() -> std::shared_ptr<WorkerChannel> {
                 if (++attempts < 2) throw std::runtime_error("connection refused");
                 return fresh;
               }});
  WorkerPoolOptions opt;
  opt.readmit_interval = std::chrono::milliseconds(20);
  WorkerPool pool(std::move(m), opt);
  dead->kill();
  auto p = pool.submit(matmul(random_blinded({2, 2}, 1), random_blinded({2, 2}, 2)));
  EXPECT_TRUE(p.get().unavailable);
  for (int i = 0; i < 500 && pool.live_count() == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(pool.live_count(), 1) << "not re-admitted after " << attempts << " attempts";
  auto q = pool.submit(matmul(random_blinded({2, 2}, 1), random_blinded({2, 2}, 2)));
  EXPECT_TRUE(q.get().ok);
  EXPECT_EQ(fresh->received(), 1);
  EXPECT_EQ(pool.counters().readmissions, 1);
}

TEST(WorkerPool, WhyADeadWorkerIsNotReadmittedIsLoggedOncePerReason) {
  auto dead = std::make_shared<KillableChannel>();
  std::atomic<int> attempts{0};
  std::vector<WorkerPool::Member> m;
  m.push_back({"w0", dead, [&]() -> std::shared_ptr<WorkerChannel> {
                 throw std::runtime_error(++attempts < 4 ? "connection refused"
                                                         : "computes in bf16, coarser than fp32");
               }});
  std::mutex mu;
  std::vector<std::string> lines;
  WorkerPoolOptions opt;
  opt.readmit_interval = std::chrono::milliseconds(5);
  opt.log = [&](const std::string& l) {
    std::lock_guard lock(mu);
    lines.push_back(l);
  };
  WorkerPool pool(std::move(m), opt);
  dead->kill();
  EXPECT_TRUE(
      pool.submit(matmul(random_blinded({2, 2}, 1), random_blinded({2, 2}, 2))).get().unavailable);
  for (int i = 0; i < 500 && attempts < 8; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_GE(attempts, 8);
  std::lock_guard lock(mu);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "worker w0 not re-admitted: connection refused");
  EXPECT_EQ(lines[1], "worker w0 not re-admitted: computes in bf16, coarser than fp32");
}

TEST(WorkerPool, AQuarantinedWorkerGetsNoFurtherRequest) {
  auto cs = channels(2);
  WorkerPool pool(members(cs));
  EXPECT_EQ(pool.quarantine(0), "w0");
  for (int i = 0; i < 4; ++i) {
    auto p = pool.submit(matmul(random_blinded({2, 2}, 1), random_blinded({2, 2}, 2)), 0);
    ASSERT_TRUE(p.get().ok);
    EXPECT_EQ(p.worker(), 1);
  }
  EXPECT_EQ(cs[0]->received(), 0);
  EXPECT_FALSE(pool.all_quarantined());
  pool.quarantine(1);
  EXPECT_TRUE(pool.all_quarantined());
}

// --- the offload engine over several workers ---

Tensor random_tensor(const Shape& s, uint64_t seed) {
  Rng rng(seed);
  Tensor t(s);
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = static_cast<float>(rng.normal());
  return t;
}

float max_rel_error(const Tensor& got, const Tensor& want) {
  float worst = 0, scale = 0;
  for (int64_t i = 0; i < want.numel(); ++i) scale = std::max(scale, std::abs(want[i]));
  for (int64_t i = 0; i < want.numel(); ++i)
    worst = std::max(worst, std::abs(got[i] - want[i]) / scale);
  return worst;
}

struct ConvResult {
  Tensor y, dx, dw;
};

/// The reference: the conv forward and backward computed in the TEE.
ConvResult plain_conv(const Tensor& x, const Tensor& w, const Tensor& dy,
                      const nn::ConvGeometry& g) {
  std::unique_ptr<nn::SavedProduct> saved;
  ConvResult r;
  r.y = nn::plain_compute().conv2d(x, w, g, &saved);
  nn::plain_compute().conv2d_backward(dy, &saved, &r.dx, &r.dw);
  return r;
}

ConvResult conv_through(OffloadEngine& engine, ConvMode mode, const Tensor& x, const Tensor& w,
                        const Tensor& dy, const nn::ConvGeometry& g) {
  TempoCompute compute(engine, "conv", mode);
  std::unique_ptr<nn::SavedProduct> saved;
  ConvResult r;
  r.y = compute.conv2d(x, w, g, &saved);
  compute.conv2d_backward(dy, &saved, &r.dx, &r.dw);
  return r;
}

class ShardedEngine : public ::testing::TestWithParam<ConvMode> {};

TEST_P(ShardedEngine, ThreeWorkersGiveThePlainResultsLikeOneWorkerDoes) {
  const Tensor x = random_tensor({7, 3, 9, 8}, 1), w = random_tensor({5, 3, 3, 3}, 2);
  nn::ConvGeometry g;
  g.pad_h = g.pad_w = 1;
  const Tensor dy = random_tensor({7, 5, 9, 8}, 3);
  const ConvResult plain = plain_conv(x, w, dy, g);

  for (int workers : {1, 3})
    for (int chunks : {1, 2}) {
      auto cs = channels(workers);
      OffloadPolicy policy;
      policy.pipeline_chunks = chunks;
      OffloadEngine engine(std::make_shared<WorkerPool>(members(cs)), policy);
      const ConvResult r = conv_through(engine, GetParam(), x, w, dy, g);
      SCOPED_TRACE(std::to_string(workers) + " workers, " + std::to_string(chunks) + " chunks");
      EXPECT_LT(max_rel_error(r.y, plain.y), 1e-5);
      EXPECT_LT(max_rel_error(r.dx, plain.dx), 1e-5);
      EXPECT_LT(max_rel_error(r.dw, plain.dw), 1e-5);
      // Every worker took part, and every shard went out under its own key: the blinded
      // weights of the forward (the first request each worker saw) all differ.
      for (auto& c : cs) EXPECT_GT(c->received(), 0);
      for (size_t i = 1; i < cs.size(); ++i) {
        const BlindedTensor& w0 = cs[0]->first_b();
        const BlindedTensor& wi = cs[i]->first_b();
        ASSERT_EQ(w0.shape(), wi.shape());
        EXPECT_NE(0, std::memcmp(w0.data(), wi.data(), static_cast<size_t>(w0.bytes())));
      }
    }
}

TEST_P(ShardedEngine, AWorkerKilledBetweenForwardAndBackwardCostsNothingButTime) {
  const Tensor x = random_tensor({6, 2, 7, 7}, 4), w = random_tensor({4, 2, 3, 3}, 5);
  const Tensor dy = random_tensor({6, 4, 5, 5}, 6);
  const nn::ConvGeometry g;
  const ConvResult plain = plain_conv(x, w, dy, g);

  auto cs = channels(3);
  auto pool = std::make_shared<WorkerPool>(members(cs));
  OffloadEngine engine(pool, OffloadPolicy{});
  TempoCompute compute(engine, "conv", GetParam());
  std::unique_ptr<nn::SavedProduct> s;
  ConvResult r;
  r.y = compute.conv2d(x, w, g, &s);
  cs[1]->kill();  // its cached operands are gone with it
  compute.conv2d_backward(dy, &s, &r.dx, &r.dw);
  EXPECT_LT(max_rel_error(r.y, plain.y), 1e-5);
  EXPECT_LT(max_rel_error(r.dx, plain.dx), 1e-5);
  EXPECT_LT(max_rel_error(r.dw, plain.dw), 1e-5);
  EXPECT_EQ(pool->counters().deaths, 1);
  EXPECT_GE(pool->counters().reuploaded, 2);  // its X' and W'
  EXPECT_EQ(engine.integrity().computed_without_worker_count(), 0);
}

TEST_P(ShardedEngine, WithEveryWorkerGoneFallbackLocalComputesInTheTeeAndStopThrows) {
  const Tensor x = random_tensor({4, 2, 6, 6}, 7), w = random_tensor({3, 2, 3, 3}, 8);
  const Tensor dy = random_tensor({4, 3, 4, 4}, 9);
  const nn::ConvGeometry g;
  const ConvResult plain = plain_conv(x, w, dy, g);

  auto cs = channels(2);
  OffloadPolicy local;
  local.fallback = Fallback::kLocal;
  OffloadEngine engine(std::make_shared<WorkerPool>(members(cs)), local);
  TempoCompute compute(engine, "conv", GetParam());
  std::unique_ptr<nn::SavedProduct> s;
  ConvResult r;
  r.y = compute.conv2d(x, w, g, &s);
  cs[0]->kill();
  cs[1]->kill();
  compute.conv2d_backward(dy, &s, &r.dx, &r.dw);
  EXPECT_LT(max_rel_error(r.dx, plain.dx), 1e-5);
  EXPECT_LT(max_rel_error(r.dw, plain.dw), 1e-5);
  EXPECT_GT(engine.integrity().computed_without_worker_count(), 0);
  // The next product runs in the TEE at once.
  const Tensor y2 = compute.conv2d(x, w, g, &s);
  EXPECT_LT(max_rel_error(y2, plain.y), 1e-5);

  auto gone = channels(1);
  gone[0]->kill();
  OffloadEngine stopping(std::make_shared<WorkerPool>(members(gone)), OffloadPolicy{});
  TempoCompute c2(stopping, "conv", GetParam());
  EXPECT_THROW(c2.conv2d(x, w, g, &s), WorkersUnavailableError);
}

TEST(ShardedEngine, AWorkerKilledBeforeAnAttentionBackwardHasItsCachedEntriesReuploaded) {
  const Tensor a = random_tensor({9, 6, 4}, 10), b = random_tensor({9, 6, 4}, 11);
  const Tensor dc = random_tensor({9, 6, 6}, 12);
  std::unique_ptr<nn::SavedProduct> ps;
  const Tensor pc = nn::plain_compute().batched_matmul_forward(a, b, true, &ps);
  Tensor pda, pdb;
  nn::plain_compute().batched_matmul_backward(dc, &ps, &pda, &pdb);

  auto cs = channels(3);
  auto pool = std::make_shared<WorkerPool>(members(cs));
  OffloadEngine engine(pool, OffloadPolicy{});
  TempoCompute compute(engine, "attn", ConvMode::kPatch);
  std::unique_ptr<nn::SavedProduct> s;
  const Tensor c = compute.batched_matmul_forward(a, b, true, &s);
  cs[1]->kill();  // its cached A' and B' entries are gone with it
  Tensor da, db;
  compute.batched_matmul_backward(dc, &s, &da, &db);
  EXPECT_LT(max_rel_error(c, pc), 1e-5);
  EXPECT_LT(max_rel_error(da, pda), 1e-5);
  EXPECT_LT(max_rel_error(db, pdb), 1e-5);
  EXPECT_EQ(pool->counters().deaths, 1);
  EXPECT_GE(pool->counters().reuploaded, 2);
  EXPECT_EQ(engine.integrity().computed_without_worker_count(), 0);
}

INSTANTIATE_TEST_SUITE_P(ConvModes, ShardedEngine,
                         ::testing::Values(ConvMode::kPatch, ConvMode::kChannel),
                         [](const auto& info) {
                           return std::string(info.param == ConvMode::kPatch ? "Patch" : "Channel");
                         });

TEST(ShardedEngine, MatmulAndAttentionProductsSplitAcrossWorkersEqualPlain) {
  auto cs = channels(3);
  OffloadEngine engine(std::make_shared<WorkerPool>(members(cs)), OffloadPolicy{});
  TempoCompute compute(engine, "linear", ConvMode::kPatch);
  const Tensor x = random_tensor({11, 6}, 1), w = random_tensor({6, 4}, 2);
  const Tensor dy = random_tensor({11, 4}, 3);
  std::unique_ptr<nn::SavedProduct> s, ps;
  const Tensor y = compute.matmul(x, w, &s);
  const Tensor py = nn::plain_compute().matmul(x, w, &ps);
  Tensor dx, dw, pdx, pdw;
  compute.matmul_backward(dy, &s, &dx, &dw);
  nn::plain_compute().matmul_backward(dy, &ps, &pdx, &pdw);
  EXPECT_LT(max_rel_error(y, py), 1e-5);
  EXPECT_LT(max_rel_error(dx, pdx), 1e-5);
  EXPECT_LT(max_rel_error(dw, pdw), 1e-5);

  // Attention's cached products: both operands split by batch, dB concatenated, not summed.
  for (bool tb : {false, true}) {
    const Tensor qa = random_tensor({7, 4, 3}, 6);
    const Tensor qb = random_tensor(tb ? Shape{7, 5, 3} : Shape{7, 3, 5}, 7);
    const Tensor dc = random_tensor({7, 4, 5}, 8);
    std::unique_ptr<nn::SavedProduct> bs, bps;
    const Tensor c = compute.batched_matmul_forward(qa, qb, tb, &bs);
    const Tensor pc = nn::plain_compute().batched_matmul_forward(qa, qb, tb, &bps);
    Tensor da, db, pda, pdb;
    compute.batched_matmul_backward(dc, &bs, &da, &db);
    nn::plain_compute().batched_matmul_backward(dc, &bps, &pda, &pdb);
    EXPECT_LT(max_rel_error(c, pc), 1e-5) << tb;
    EXPECT_LT(max_rel_error(da, pda), 1e-5) << tb;
    EXPECT_LT(max_rel_error(db, pdb), 1e-5) << tb;
  }

  const Tensor a = random_tensor({5, 4, 3}, 4), b = random_tensor({5, 4, 6}, 5);
  EXPECT_LT(max_rel_error(compute.batched_matmul(a, b, true, false),
                          nn::plain_compute().batched_matmul(a, b, true, false)),
            1e-5);
  for (auto& c : cs) EXPECT_GT(c->received(), 0);
}

}  // namespace
}  // namespace tempo::offload
