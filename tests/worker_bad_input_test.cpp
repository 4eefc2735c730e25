// The worker rejects every kind of malformed request with a message naming the problem, changes
// nothing, and stays usable.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <initializer_list>
#include <random>
#include <string>

#include "worker/worker.h"

namespace tempo::worker {
namespace {

using protocol::ConvParams;
using protocol::Handle;
using protocol::Op;
using protocol::Operand;
using protocol::Request;
using protocol::Response;
using ::testing::HasSubstr;

BlindedTensor filled(const Shape& s, float v) {
  BlindedTensor t = BlindedTensor::allocate(s);
  for (int64_t i = 0; i < t.numel(); ++i) t.mutable_data()[i] = v;
  return t;
}

Operand in(const Shape& s, Handle keep_as = 0) {
  return Operand::inline_tensor(filled(s, 1.0f), keep_as);
}

Request make(Op op, Operand a, Operand b) {
  Request r;
  r.id = 77;
  r.op = op;
  r.a = std::move(a);
  r.b = std::move(b);
  return r;
}

class WorkerBadInput : public ::testing::Test {
 protected:
  WorkerBadInput() : worker_(make_backend("cpu", 1), limits()) {
    // One cached operand, so that tests can check it survives every rejection.
    Response r = worker_.execute(make(Op::kMatMul, in({3, 4}, kCached), in({4, 2})));
    EXPECT_TRUE(r.ok) << r.error;
  }

  static WorkerLimits limits() {
    WorkerLimits l;
    l.max_tensor_bytes = 1 << 20;
    l.max_cache_bytes = 2 << 20;
    return l;
  }

  /// The request fails with a message containing every fragment; the worker is unchanged and
  /// still computes a valid product correctly.
  void expect_rejected(const Request& r, std::initializer_list<std::string> fragments) {
    const WorkerCounters before = worker_.counters();
    Response resp = worker_.execute(r);
    EXPECT_FALSE(resp.ok);
    EXPECT_EQ(resp.id, r.id);
    EXPECT_TRUE(resp.result.empty());
    for (const std::string& f : fragments) EXPECT_THAT(resp.error, HasSubstr(f));
    const WorkerCounters after = worker_.counters();
    EXPECT_EQ(after.cache_bytes, before.cache_bytes);
    EXPECT_EQ(after.cached_tensors, before.cached_tensors);
    EXPECT_EQ(after.failed, before.failed + 1);
    expect_still_works();
  }

  void expect_still_works() {
    // [2,3]·[3,4] of ones and twos: every entry is 6; the cached [3,4] operand of ones gives 3.
    Response fresh = worker_.execute(make(Op::kMatMul, Operand::inline_tensor(filled({2, 3}, 1.0f)),
                                          Operand::inline_tensor(filled({3, 4}, 2.0f))));
    ASSERT_TRUE(fresh.ok) << fresh.error;
    ASSERT_EQ(fresh.result.shape(), (Shape{2, 4}));
    for (int64_t i = 0; i < 8; ++i) EXPECT_EQ(fresh.result.data()[i], 6.0f);
    Response cached = worker_.execute(make(Op::kMatMul, Operand::cached(kCached), in({4, 1})));
    ASSERT_TRUE(cached.ok) << cached.error;
    for (int64_t i = 0; i < 3; ++i) EXPECT_EQ(cached.result.data()[i], 4.0f);
  }

  static constexpr Handle kCached = 5;
  Worker worker_;
};

TEST_F(WorkerBadInput, MatmulWithWrongRanksNamesTheOperand) {
  expect_rejected(make(Op::kMatMul, in({2, 3, 4}), in({4, 2})),
                  {"matmul: operand a (A) must have rank 2", "[2, 3, 4]"});
  expect_rejected(make(Op::kMatMul, in({2, 3}), in({3})),
                  {"matmul: operand b (B) must have rank 2", "got rank 1"});
  expect_rejected(make(Op::kBatchedMatMul, in({2, 3}), in({2, 3, 4})),
                  {"batched_matmul: operand a (A) must have rank 3"});
}

TEST_F(WorkerBadInput, MismatchedInnerOrBatchDimensions) {
  expect_rejected(make(Op::kMatMul, in({2, 3}), in({4, 5})),
                  {"matmul: inner dimensions do not match", "2x3", "4x5"});
  Request t = make(Op::kMatMul, in({2, 3}), in({2, 3}));
  t.trans_b = true;  // [2,3]·[3,2] is fine; transposing a as well is not
  t.trans_a = true;
  expect_rejected(t, {"inner dimensions do not match", "trans_a=true"});
  expect_rejected(make(Op::kBatchedMatMul, in({2, 3, 4}), in({3, 4, 5})),
                  {"batched_matmul: batch dimensions differ", "has 2", "has 3"});
}

TEST_F(WorkerBadInput, MissingOrZeroSizedOperands) {
  expect_rejected(make(Op::kMatMul, Operand{}, in({3, 2})), {"matmul: operand a (A) is missing"});
  expect_rejected(
      make(Op::kMatMul, in({2, 3}), Operand::inline_tensor(BlindedTensor::allocate({3, 0}))),
      {"operand b (B)", "dimension 1 of [3, 0] is 0", "must be positive"});
}

TEST_F(WorkerBadInput, UnknownOpIsRejected) {
  expect_rejected(make(static_cast<Op>(42), in({2, 3}), in({3, 2})), {"unknown op 42"});
}

TEST_F(WorkerBadInput, ForwardOutShapeThatDisagreesWithTheResult) {
  Request r = make(Op::kMatMul, in({2, 3}), in({3, 4}));
  r.out_shape = {2, 5};
  expect_rejected(r, {"matmul: out_shape [2, 5] does not match the result shape [2, 4]"});
}

TEST_F(WorkerBadInput, SizesOverThePerTensorLimit) {
  // 512×1024 floats = 2 MiB, over the 1 MiB limit.
  expect_rejected(make(Op::kMatMul, in({512, 1024}), in({1024, 1})),
                  {"matmul: operand a (A) [512, 1024] is 2.0 MiB", "1.0 MiB per-tensor limit"});
  // Small operands whose declared product is huge: rejected before anything is allocated.
  expect_rejected(make(Op::kMatMul, in({1 << 17, 1}), in({1, 1 << 17})),
                  {"matmul: result [131072, 131072] would be 64.0 GiB", "per-tensor limit"});
  Request bw = make(Op::kConvBackwardWeights, in({1, 1, 2, 2}), in({1, 1, 3, 3}));
  bw.conv = {1, 1, 1 << 19, 1 << 19};
  bw.out_shape = {1, 1, 1 << 20, 1 << 20};  // a kernel that fits the enormous padding
  expect_rejected(bw, {"conv_backward_weights: result [1, 1, 1048576, 1048576] would be 4.0 TiB"});
}

TEST_F(WorkerBadInput, NegativeOrOverflowingOutShape) {
  Request r = make(Op::kConvBackwardData, in({1, 4, 3, 3}), in({4, 2, 3, 3}));
  r.out_shape = {1, 2, 5, 5};
  r.out_shape[2] = -5;  // Shape's push_back refuses negatives; a decoder bug could still do this
  expect_rejected(r, {"conv_backward_data: out_shape (dX)", "dimension 2", "is -5"});
  const int64_t big = (int64_t{1} << 31) - 1;
  r.out_shape = {big, big, big, big};
  expect_rejected(r, {"conv_backward_data: out_shape (dX)", "overflows"});
  r.out_shape = {1, 2, int64_t{1} << 40, 5};
  expect_rejected(r, {"above the largest supported size"});
  r.out_shape = {};
  expect_rejected(r, {"conv_backward_data: out_shape must be the rank-4 shape of dX"});
}

TEST_F(WorkerBadInput, ConvChannelCountsAndBackwardShapesMustAgree) {
  expect_rejected(make(Op::kConvForward, in({1, 3, 5, 5}), in({4, 2, 3, 3})),
                  {"conv_forward: channel counts differ", "(X) has C=3", "(W) has C=2"});
  expect_rejected(make(Op::kConvForward, in({1, 3, 5}), in({4, 3, 3, 3})),
                  {"conv_forward: operand a (X) must have rank 4"});
  Request bd = make(Op::kConvBackwardData, in({1, 4, 3, 3}), in({4, 2, 3, 3}));
  bd.out_shape = {1, 2, 6, 5};  // 6 rows give 4 output rows, dY has 3
  expect_rejected(bd, {"conv_backward_data: operand a (dY) is 3x3", "gives 4x3"});
  bd.out_shape = {1, 3, 5, 5};
  expect_rejected(bd, {"out_shape (dX) [1, 3, 5, 5] has C=3", "operand b (W) has C=2"});
  bd.out_shape = {2, 2, 5, 5};
  expect_rejected(bd, {"has batch 2", "operand a (dY) has batch 1"});
  bd = make(Op::kConvBackwardData, in({1, 5, 3, 3}), in({4, 2, 3, 3}));
  bd.out_shape = {1, 2, 5, 5};
  expect_rejected(bd, {"operand a (dY) has 5 channels but operand b (W) has O=4 filters"});

  Request bw = make(Op::kConvBackwardWeights, in({1, 2, 5, 5}), in({1, 4, 3, 3}));
  bw.out_shape = {3, 2, 3, 3};
  expect_rejected(bw, {"conv_backward_weights: out_shape (dW) [3, 2, 3, 3] has O=3",
                       "operand b (dY) has 4 channels"});
  bw.out_shape = {4, 2, 2, 2};
  expect_rejected(bw, {"operand b (dY) is 3x3", "gives 4x4"});
  bw = make(Op::kConvBackwardWeights, in({2, 2, 5, 5}), in({1, 4, 3, 3}));
  bw.out_shape = {4, 2, 3, 3};
  expect_rejected(bw, {"conv_backward_weights: batch sizes differ"});
}

TEST_F(WorkerBadInput, BadConvParameters) {
  Request r = make(Op::kConvForward, in({1, 3, 5, 5}), in({4, 3, 3, 3}));
  r.conv = ConvParams{0, 1, 0, 0};
  expect_rejected(r, {"conv_forward: stride must be >= 1", "stride_h=0"});
  r.conv = ConvParams{1, 1, -1, 0};
  expect_rejected(r, {"conv_forward: padding must be >= 0", "pad_h=-1"});
  r.conv = ConvParams{1, 1, 0, 0};
  r.b = in({4, 3, 7, 3});
  expect_rejected(r, {"conv_forward: kernel 7x3 does not fit the input 5x5 padded by 0x0"});
  r.b = in({4, 3, 3, 3});
  r.trans_a = true;
  expect_rejected(r, {"trans_a/trans_b must be false"});
}

TEST_F(WorkerBadInput, UnknownHandles) {
  expect_rejected(make(Op::kMatMul, Operand::cached(99), in({4, 2})),
                  {"matmul: operand a (A) refers to unknown handle 99"});
  Request r = make(Op::kMatMul, in({2, 3}), in({3, 2}));
  r.free_handles = {kCached, 98};
  expect_rejected(r, {"free_handles names unknown handle 98"});
  Request f;
  f.op = Op::kFree;
  f.free_handles = {98};
  expect_rejected(f, {"free: free_handles names unknown handle 98"});
  f.free_handles = {kCached, kCached};
  expect_rejected(f, {"lists handle 5 more than once"});
  f.free_handles = {0};
  expect_rejected(f, {"handle 0"});
  f.free_handles = {kCached};
  f.a = in({2, 2});
  expect_rejected(f, {"free: takes no operands"});
}

TEST_F(WorkerBadInput, PuttingUnderAHandleInUseIsAnError) {
  expect_rejected(make(Op::kMatMul, in({3, 4}, kCached), in({4, 2})),
                  {"matmul: operand a (A): handle 5 is already in use", "[3, 4]"});
  expect_rejected(make(Op::kMatMul, in({3, 3}, 8), in({3, 3}, 8)),
                  {"operands a and b are both to be cached under handle 8"});
}

TEST_F(WorkerBadInput, RejectedRequestCachesNothing) {
  // a would be put under 9, but b is unknown: 9 must not exist afterwards.
  expect_rejected(make(Op::kMatMul, in({2, 4}, 9), Operand::cached(123)), {"unknown handle 123"});
  Response r = worker_.execute(make(Op::kMatMul, Operand::cached(9), in({4, 1})));
  EXPECT_FALSE(r.ok);
  EXPECT_THAT(r.error, HasSubstr("unknown handle 9"));
}

TEST_F(WorkerBadInput, CacheOverflowIsRejectedWholesale) {
  // 2 MiB bound, 48 B in use; after two 768 KiB puts another 512 KiB is 48 B too many.
  ASSERT_TRUE(worker_.execute(make(Op::kMatMul, in({192, 1024}, 10), in({1024, 1}))).ok);
  ASSERT_TRUE(worker_.execute(make(Op::kMatMul, in({192, 1024}, 11), in({1024, 1}))).ok);
  expect_rejected(make(Op::kMatMul, in({128, 1024}, 12), in({1024, 1})),
                  {"matmul: cache full: putting handle 12 (512.0 KiB) would exceed the 2.0 MiB "
                   "bound; 1.5 MiB in use"});
  // a alone would fit, a and b together do not: neither is cached.
  expect_rejected(make(Op::kMatMul, in({1, 16}, 12), in({16, 8192}, 13)),
                  {"cache full: putting handle 13 (512.0 KiB)"});
  Response r = worker_.execute(make(Op::kMatMul, Operand::cached(12), in({16, 1})));
  EXPECT_THAT(r.error, HasSubstr("unknown handle 12"));
}

}  // namespace
}  // namespace tempo::worker
