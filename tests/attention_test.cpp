#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "gradcheck.h"
#include "master/nn/attention.h"
#include "master/nn/plain_compute.h"

namespace tempo {
namespace {

using testing::closeness;
using testing::random_tensor;

/// Plain compute that counts the attention products it is asked for.
class CountingCompute final : public nn::Compute {
 public:
  const char* name() const override { return "counting"; }
  Tensor matmul(const Tensor& x, const Tensor& w, std::unique_ptr<nn::SavedProduct>* s) override {
    return plain.matmul(x, w, s);
  }
  void matmul_backward(const Tensor& dy, std::unique_ptr<nn::SavedProduct>* s, Tensor* dx,
                       Tensor* dw) override {
    plain.matmul_backward(dy, s, dx, dw);
  }
  Tensor conv2d(const Tensor& x, const Tensor& w, const nn::ConvGeometry& g,
                std::unique_ptr<nn::SavedProduct>* s) override {
    return plain.conv2d(x, w, g, s);
  }
  void conv2d_backward(const Tensor& dy, std::unique_ptr<nn::SavedProduct>* s, Tensor* dx,
                       Tensor* dw) override {
    plain.conv2d_backward(dy, s, dx, dw);
  }
  Tensor batched_matmul(const Tensor& a, const Tensor& b, bool ta, bool tb) override {
    ++batched;
    return plain.batched_matmul(a, b, ta, tb);
  }
  nn::PlainCompute plain;
  int batched = 0;
};

/// out[r, :] = x[r, :]·W + b for a Linear's [in, out] weight.
std::vector<double> linear_ref(const std::vector<double>& x, int64_t rows, nn::Linear& l) {
  const int64_t in = l.in_features(), out = l.out_features();
  std::vector<double> y(static_cast<size_t>(rows * out));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < out; ++j) {
      double s = l.bias().value[j];
      for (int64_t i = 0; i < in; ++i) s += x[r * in + i] * l.weight().value[i * out + j];
      y[r * out + j] = s;
    }
  return y;
}

/// Textbook multi-head attention in double, straight from the definition (timm's layout:
/// qkv features are [q | k | v], each split into heads of consecutive features).
std::vector<double> naive_attention(const Tensor& x, nn::MultiHeadSelfAttention& m) {
  const int64_t B = x.dim(0), T = x.dim(1), D = x.dim(2), H = m.heads(), hd = D / H;
  std::vector<double> xv(x.data(), x.data() + x.numel());
  std::vector<double> qkv = linear_ref(xv, B * T, m.qkv());
  std::vector<double> merged(static_cast<size_t>(B * T * D));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < T; ++i) {
        auto q = [&](int64_t t, int64_t d) { return qkv[(b * T + t) * 3 * D + h * hd + d]; };
        auto k = [&](int64_t t, int64_t d) { return qkv[(b * T + t) * 3 * D + D + h * hd + d]; };
        auto v = [&](int64_t t, int64_t d) {
          return qkv[(b * T + t) * 3 * D + 2 * D + h * hd + d];
        };
        std::vector<double> score(static_cast<size_t>(T));
        double mx = -1e300, sum = 0;
        for (int64_t j = 0; j < T; ++j) {
          double s = 0;
          for (int64_t d = 0; d < hd; ++d) s += q(i, d) * k(j, d);
          score[j] = s / std::sqrt(double(hd));
          mx = std::max(mx, score[j]);
        }
        for (auto& s : score) sum += (s = std::exp(s - mx));
        for (int64_t d = 0; d < hd; ++d) {
          double o = 0;
          for (int64_t j = 0; j < T; ++j) o += score[j] / sum * v(j, d);
          merged[(b * T + i) * D + h * hd + d] = o;
        }
      }
  return linear_ref(merged, B * T, m.proj());
}

TEST(MultiHeadSelfAttention, ForwardMatchesNaiveImplementation) {
  Rng rng(1);
  nn::MultiHeadSelfAttention attn(8, 2, rng);
  Tensor x = random_tensor({2, 5, 8}, rng, 2.0f);  // large enough for peaked softmaxes
  Tensor y = attn.forward(x);
  ASSERT_EQ(y.shape(), x.shape());
  std::vector<double> ref = naive_attention(x, attn);
  for (int64_t i = 0; i < y.numel(); ++i) EXPECT_NEAR(y[i], ref[i], 1e-5) << i;
}

TEST(MultiHeadSelfAttention, GradientsMatchFiniteDifferences) {
  Rng rng(2);
  nn::MultiHeadSelfAttention attn(8, 2, rng);
  testing::expect_gradients_match(attn, random_tensor({2, 5, 8}, rng));
}

TEST(MultiHeadSelfAttention, AllAttentionProductsGoThroughCompute) {
  Rng rng(3);
  nn::MultiHeadSelfAttention attn(8, 4, rng);
  CountingCompute counting;
  attn.set_compute(&counting);
  Tensor x = random_tensor({3, 6, 8}, rng);
  Tensor y = attn.forward(x);
  EXPECT_EQ(counting.batched, 2);  // Q·Kᵀ and A·V
  attn.backward(random_tensor(y.shape(), rng));
  EXPECT_EQ(counting.batched, 6);  // + dA, dV, dQ, dK
}

TEST(MultiHeadSelfAttention, EvalForwardMatchesTrainingForwardAndKeepsNothing) {
  Rng rng(4);
  nn::MultiHeadSelfAttention attn(12, 3, rng);
  Tensor x = random_tensor({2, 7, 12}, rng);
  Tensor y_train = attn.forward(x);
  attn.backward(Tensor::zeros(y_train.shape()));
  attn.train(false);
  Tensor y_eval = attn.forward(x);
  EXPECT_LT(closeness(y_eval, y_train, 0, 0), 1e-30);  // bit-identical
  EXPECT_THROW(attn.backward(y_eval), std::logic_error);
}

TEST(MultiHeadSelfAttention, RejectsBadShapesAndHeadCounts) {
  Rng rng(5);
  EXPECT_THROW(nn::MultiHeadSelfAttention(10, 3, rng), std::invalid_argument);
  EXPECT_THROW(nn::MultiHeadSelfAttention(8, 0, rng), std::invalid_argument);
  nn::MultiHeadSelfAttention attn(8, 2, rng);
  EXPECT_THROW(attn.forward(Tensor::zeros({2, 5, 6})), std::invalid_argument);
  EXPECT_THROW(attn.forward(Tensor::zeros({10, 8})), std::invalid_argument);
}

// PlainCompute::batched_matmul runs products in parallel over the batch: check every transpose
// combination against a naive product, on a batch large enough for the parallel path.
TEST(PlainComputeBatchedMatmul, AllTransposeFlagsMatchNaiveProducts) {
  Rng rng(6);
  nn::PlainCompute pc;
  const int64_t batch = 8, m = 32, k = 24, n = 16;  // 98k multiply-adds: parallel path
  for (int flags = 0; flags < 4; ++flags) {
    const bool ta = flags & 1, tb = flags & 2;
    Tensor a = random_tensor(ta ? Shape{batch, k, m} : Shape{batch, m, k}, rng);
    Tensor b = random_tensor(tb ? Shape{batch, n, k} : Shape{batch, k, n}, rng);
    Tensor c = pc.batched_matmul(a, b, ta, tb);
    ASSERT_EQ(c.shape(), Shape({batch, m, n}));
    Tensor ref({batch, m, n});
    for (int64_t p = 0; p < batch; ++p)
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
          double s = 0;
          for (int64_t l = 0; l < k; ++l)
            s += double(a[p * m * k + (ta ? l * m + i : i * k + l)]) *
                 b[p * k * n + (tb ? j * k + l : l * n + j)];
          ref[(p * m + i) * n + j] = static_cast<float>(s);
        }
    EXPECT_LT(closeness(c, ref, 1e-5, 1e-5), 1.0) << "trans_a " << ta << " trans_b " << tb;
  }
  EXPECT_THROW(pc.batched_matmul(Tensor({2, 3, 4}), Tensor({2, 5, 6}), false, false),
               std::invalid_argument);
}

}  // namespace
}  // namespace tempo
