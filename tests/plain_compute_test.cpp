#include <gtest/gtest.h>

#include "gradcheck.h"
#include "master/nn/plain_compute.h"

namespace tempo {
namespace {

Tensor naive_matmul(const Tensor& a, const Tensor& b) {
  Tensor c = Tensor::zeros({a.dim(0), b.dim(1)});
  for (int64_t i = 0; i < a.dim(0); ++i)
    for (int64_t j = 0; j < b.dim(1); ++j) {
      double s = 0;
      for (int64_t k = 0; k < a.dim(1); ++k) s += double(a[i * a.dim(1) + k]) * b[k * b.dim(1) + j];
      c[i * b.dim(1) + j] = static_cast<float>(s);
    }
  return c;
}

TEST(PlainCompute, MatmulForwardAndBackwardMatchNaiveProducts) {
  Rng rng(1);
  nn::PlainCompute pc;
  Tensor x = testing::random_tensor({7, 5}, rng), w = testing::random_tensor({5, 3}, rng);
  std::unique_ptr<nn::SavedProduct> saved;
  Tensor y = pc.matmul(x, w, &saved);
  EXPECT_LT(testing::closeness(y, naive_matmul(x, w), 1e-5, 1e-5), 1.0);
  Tensor dy = testing::random_tensor({7, 3}, rng), dx, dw;
  pc.matmul_backward(dy, &saved, &dx, &dw);
  EXPECT_EQ(saved, nullptr);
  Tensor wt({3, 5}), xt({5, 7});
  for (int i = 0; i < 5; ++i)
    for (int j = 0; j < 3; ++j) wt[j * 5 + i] = w[i * 3 + j];
  for (int i = 0; i < 7; ++i)
    for (int j = 0; j < 5; ++j) xt[j * 7 + i] = x[i * 5 + j];
  EXPECT_LT(testing::closeness(dx, naive_matmul(dy, wt), 1e-5, 1e-5), 1.0);
  EXPECT_LT(testing::closeness(dw, naive_matmul(xt, dy), 1e-5, 1e-5), 1.0);
}

TEST(PlainCompute, MatmulRejectsShapesThatDoNotChain) {
  nn::PlainCompute pc;
  EXPECT_THROW(pc.matmul(Tensor({2, 3}), Tensor({4, 5}), nullptr), std::invalid_argument);
}

}  // namespace
}  // namespace tempo
