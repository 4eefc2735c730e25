// Property tests of MM-obfuscation for matrix products (PROTOCOL.md sections 2, 4, 6): keys,
// CSPRNG shuffle, correctness theorem Dec(Enc(A)·Enc(B)) = A·B, backward key shift, batched.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstring>
#include <map>
#include <numeric>
#include <span>
#include <tuple>
#include <type_traits>
#include <vector>

#include "crypto_test_util.h"
#include "master/crypto/crypto.h"
#include "master/integrity/error_bound.h"

namespace tempo {
namespace {

using crypto::DimKey;
using crypto::KeyGenerator;
using crypto::MatmulKey;
using crypto::ObfuscationParams;
using testing::abs_of;
using testing::expect_within_fp_bound;
using testing::plain_gemm;
using testing::random_matrix;
using testing::to_tensor;
using testing::worker_gemm;

// ---------------------------------------------------------------------------- keys and CSPRNG

// A key's array as a vector, to compare two keys' arrays.
template <class T>
std::vector<std::remove_const_t<T>> vec(std::span<T> s) {
  return {s.begin(), s.end()};
}

TEST(CryptoKeys, PermutationsAreValidAndInversesMatch) {
  KeyGenerator gen;
  for (int64_t n : {0, 1, 2, 7, 100, 4097}) {
    const DimKey k = gen.dim_key(n, true);
    EXPECT_TRUE(k.is_valid()) << n;
    EXPECT_EQ(k.size(), n);
  }
  DimKey bad = gen.dim_key(10);
  bad.perm()[0] = bad.perm()[1];
  EXPECT_FALSE(bad.is_valid());
}

TEST(CryptoKeys, FreshKeysDiffer) {
  KeyGenerator gen;
  const MatmulKey a = gen.matmul_key(64, 64, 64), b = gen.matmul_key(64, 64, 64);
  // Two independent permutations of 64 agree with probability 1/64! and scale vectors of 64
  // entries with probability 17^-64: equality means the generator is not fresh.
  EXPECT_NE(vec(a.m.perm()), vec(b.m.perm()));
  EXPECT_NE(vec(a.k.perm()), vec(b.k.perm()));
  EXPECT_NE(vec(a.n.perm()), vec(b.n.perm()));
  EXPECT_NE(vec(a.m.scale()), vec(b.m.scale()));
  EXPECT_NE(vec(a.k.scale()), vec(b.k.scale()));
}

TEST(CryptoKeys, EveryEntryOfABatchedKeyIsValidAndItsOwn) {
  // The entries share one allocation and are drawn on several threads.
  const crypto::BatchedMatmulKey key = KeyGenerator().batched_matmul_key(96, 49, 16, 49);
  ASSERT_EQ(key.entries.size(), 96U);
  for (const MatmulKey& e : key.entries) {
    ASSERT_TRUE(e.m.is_valid() && e.k.is_valid() && e.n.is_valid());
    ASSERT_EQ(e.m.size(), 49);
    ASSERT_EQ(e.k.size(), 16);
    ASSERT_EQ(e.n.size(), 49);
  }
  EXPECT_NE(vec(key.entries.front().m.perm()), vec(key.entries.back().m.perm()));
  EXPECT_NE(vec(key.entries[0].n.scale()), vec(key.entries[1].n.scale()));
}

TEST(CryptoKeys, ACopiedKeyIsIndependentOfItsOriginal) {
  const crypto::BatchedMatmulKey key = KeyGenerator().batched_matmul_key(2, 8, 8, 8);
  MatmulKey copy = key.entries[0];
  std::swap(copy.m.perm()[0], copy.m.perm()[1]);
  copy.k.scale()[0] = 3.0f;
  EXPECT_TRUE(key.entries[0].m.is_valid());
  EXPECT_NE(key.entries[0].m.perm()[0], copy.m.perm()[0]);
  EXPECT_NE(key.entries[0].k.scale()[0], 3.0f);
  EXPECT_TRUE(key.entries[1].k.is_valid());
}

TEST(CryptoKeys, PowerOfTwoScalesLieInRangeAndInnerScaleCarriesBothSigns) {
  for (int sigma : {0, 1, 8}) {
    ObfuscationParams p;
    p.sigma = sigma;
    KeyGenerator gen(p);
    const MatmulKey key = gen.matmul_key(300, 300, 300);
    std::map<int, int> exponents;
    int negative = 0;
    for (const DimKey* d : {&key.m, &key.k, &key.n})
      for (size_t i = 0; i < d->scale().size(); ++i) {
        const float s = d->scale()[i];
        int e = 0;
        const float mant = std::frexp(std::abs(s), &e);
        EXPECT_EQ(mant, 0.5f) << "not a power of two: " << s;
        EXPECT_GE(e - 1, -sigma);
        EXPECT_LE(e - 1, sigma);
        EXPECT_EQ(d->scale()[i] * d->inv_scale()[i], 1.0f);
        ++exponents[e - 1];
        if (s < 0) {
          ++negative;
          EXPECT_EQ(d, &key.k) << "only the inner scale is signed";
        }
      }
    // 900 draws over 2*sigma+1 exponents: every exponent shows up (miss prob. < 17*(16/17)^900).
    EXPECT_EQ(static_cast<int>(exponents.size()), 2 * sigma + 1);
    EXPECT_GT(negative, 100);  // ~150 of the 300 inner scales; below 100 has prob. < 1e-9
    EXPECT_LT(negative, 200);
  }
}

TEST(CryptoKeys, LogUniformScalesLieInRange) {
  ObfuscationParams p;
  p.distribution = crypto::ScaleDistribution::kLogUniform;
  p.sigma = 4;
  const DimKey k = KeyGenerator(p).dim_key(1000);
  int non_power_of_two = 0;
  for (float s : k.scale()) {
    EXPECT_GE(s, std::ldexp(1.0f, -4) * 0.999f);
    EXPECT_LE(s, std::ldexp(1.0f, 4) * 1.001f);
    int e = 0;
    non_power_of_two += std::frexp(s, &e) != 0.5f;
  }
  EXPECT_GT(non_power_of_two, 990);
}

TEST(CryptoKeys, InvalidSigmaIsRejected) {
  ObfuscationParams p;
  p.sigma = -1;
  EXPECT_THROW(KeyGenerator{p}, std::invalid_argument);
}

// Chi-square statistic of `draws` shuffles of [0,5) over the 120 permutations.
template <typename Shuffle>
double shuffle_chi_square(Shuffle shuffle, int draws) {
  std::map<std::array<int32_t, 5>, int> counts;
  for (int d = 0; d < draws; ++d) {
    std::array<int32_t, 5> v{0, 1, 2, 3, 4};
    shuffle(v.data());
    ++counts[v];
  }
  const double expected = draws / 120.0;
  double chi2 = 0;
  for (const auto& [perm, c] : counts) chi2 += (c - expected) * (c - expected) / expected;
  chi2 += (120 - static_cast<double>(counts.size())) * expected;  // permutations never drawn
  return chi2;
}

TEST(CryptoCsprng, FisherYatesIsUniformOverAllPermutations) {
  // 119 degrees of freedom: P(chi2 > 236) = 1e-9 under uniformity.
  crypto::Csprng rng;
  const double chi2 = shuffle_chi_square([&](int32_t* v) { rng.shuffle(v, 5); }, 36000);
  EXPECT_LT(chi2, 236.0);
  // The same statistic catches the classic biased shuffle (swap with any index), so the test
  // has power: its expected chi2 here is in the thousands.
  const double biased = shuffle_chi_square(
      [&](int32_t* v) {
        for (int i = 0; i < 5; ++i) std::swap(v[i], v[rng.uniform(5)]);
      },
      36000);
  EXPECT_GT(biased, 236.0);
}

TEST(CryptoCsprng, UniformStaysBelowBoundAndCoversIt) {
  crypto::Csprng rng;
  for (uint32_t b : {1u, 2u, 3u, 7u}) {
    std::vector<int> seen(b, 0);
    for (int i = 0; i < 400; ++i) {
      const uint32_t v = rng.uniform(b);
      ASSERT_LT(v, b);
      ++seen[v];
    }
    for (uint32_t v = 0; v < b; ++v) EXPECT_GT(seen[v], 0) << v;  // miss prob. < 7*(6/7)^400
  }
  EXPECT_THROW(rng.uniform(0), std::invalid_argument);
}

// For a bound of 3·2^30, 2^32 random words cannot map evenly onto the outputs: r mod bound
// hits [0, 2^30) twice as often as the rest, and the high word of r·bound without rejection
// hits one residue mod 3 twice as often. Both biases are 50 % against 33 %; the two chi-square
// statistics (2 degrees of freedom, 60000 draws) would exceed 1000 under either.
TEST(CryptoCsprng, UniformIsUnbiasedForABoundNearTwoToThe32) {
  crypto::Csprng rng;
  const uint32_t bound = 3U << 30;
  std::array<int, 3> by_range{}, by_residue{};
  constexpr int kDraws = 60000;
  for (int i = 0; i < kDraws; ++i) {
    const uint32_t v = rng.uniform(bound);
    ASSERT_LT(v, bound);
    ++by_range[v >> 30];
    ++by_residue[v % 3];
  }
  auto chi2 = [](const std::array<int, 3>& c) {
    const double e = kDraws / 3.0;
    double x = 0.0;
    for (int n : c) x += (n - e) * (n - e) / e;
    return x;
  };
  // P(chi2 > 40) = 2e-9 for 2 degrees of freedom under uniformity.
  EXPECT_LT(chi2(by_range), 40.0);
  EXPECT_LT(chi2(by_residue), 40.0);
}

// A run whose product is 3·2^62: without the rejection, floor(x·P / 2^64) = floor(3x/4) hits
// the residue 0 mod 3 twice as often as the others (chi2 near 6000 here). Two bounds of the same
// product, 3·2^30 and 2^32, give the digits of that same number: (d1·2^32 + d2) mod 3 is
// (d1 + d2) mod 3, so their sum carries the same bias.
TEST(CryptoCsprng, UniformBatchIsUnbiasedForAProductNearTwoToThe64) {
  crypto::Csprng rng;
  constexpr int kDraws = 60000;
  auto chi2 = [](const std::array<int, 3>& c) {
    const double e = kDraws / 3.0;
    double x = 0.0;
    for (int n : c) x += (n - e) * (n - e) / e;
    return x;
  };
  std::array<int, 3> one_bound{}, two_bounds{};
  const uint64_t single[] = {uint64_t{3} << 62};
  const uint64_t pair[] = {uint64_t{3} << 30, uint64_t{1} << 32};
  for (int i = 0; i < kDraws; ++i) {
    uint64_t out[2];
    rng.uniform_batch(single, 1, out);
    ASSERT_LT(out[0], single[0]);
    ++one_bound[out[0] % 3];
    rng.uniform_batch(pair, 2, out);
    ASSERT_LT(out[0], pair[0]);
    ASSERT_LT(out[1], pair[1]);
    ++two_bounds[(out[0] + out[1]) % 3];
  }
  // P(chi2 > 40) = 2e-9 for 2 degrees of freedom under uniformity.
  EXPECT_LT(chi2(one_bound), 40.0);
  EXPECT_LT(chi2(two_bounds), 40.0);
}

// Digits of one draw must be independent, not only uniform one by one: the joint counts of three
// digits (bounds 3, 4, 5: one run) over all 60 combinations, and of a run split across two draws.
TEST(CryptoCsprng, UniformBatchDigitsAreJointlyUniform) {
  crypto::Csprng rng;
  constexpr int kDraws = 60000;
  const uint64_t bounds[] = {3, 4, 5};
  std::array<int, 60> joint{};
  for (int i = 0; i < kDraws; ++i) {
    uint64_t out[3];
    rng.uniform_batch(bounds, 3, out);
    ++joint[static_cast<size_t>((out[0] * 4 + out[1]) * 5 + out[2])];
  }
  double chi2 = 0.0;
  for (int n : joint) chi2 += (n - 1000.0) * (n - 1000.0) / 1000.0;
  EXPECT_LT(chi2, 150.0);  // 59 degrees of freedom: P(chi2 > 150) ~ 1e-9
  const uint64_t zero_bound[] = {4, 0};
  uint64_t out[2];
  EXPECT_THROW(rng.uniform_batch(zero_bound, 2, out), std::invalid_argument);
}

// A shuffle of 25 takes its swap indices from two draws (the product of 25·24·...·12 exceeds
// 2^64): every value must still land on every position with probability 1/25. A mistake at the
// boundary between draws (an index used twice, a position skipped) skews this table.
TEST(CryptoCsprng, FisherYatesAcrossSeveralDrawsPutsEveryValueEverywhereEvenly) {
  crypto::Csprng rng;
  constexpr int kN = 25, kShuffles = 2500;  // 100 expected per cell
  std::vector<int> count(kN * kN, 0);
  std::array<int32_t, kN> v{};
  for (int s = 0; s < kShuffles; ++s) {
    std::iota(v.begin(), v.end(), 0);
    rng.shuffle(v.data(), kN);
    for (int p = 0; p < kN; ++p) ++count[static_cast<size_t>(v[static_cast<size_t>(p)] * kN + p)];
  }
  double chi2 = 0.0;
  for (int n : count) chi2 += (n - 100.0) * (n - 100.0) / 100.0;
  EXPECT_LT(chi2, 804.0);  // 576 degrees of freedom: P(chi2 > 804) ~ 1e-9
}

TEST(CryptoCsprng, TwoStreamsAreIndependentlyKeyed) {
  crypto::Csprng a, b;
  std::vector<uint32_t> va, vb;
  for (int i = 0; i < 8; ++i) {
    va.push_back(a.next_u32());
    vb.push_back(b.next_u32());
  }
  EXPECT_NE(va, vb);  // equal with probability 2^-256
}

TEST(CryptoCsprng, UniformUnitIsInHalfOpenUnitInterval) {
  crypto::Csprng rng;
  double sum = 0;
  for (int i = 0; i < 10000; ++i) {
    const double u = rng.uniform_unit();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
  }
  EXPECT_NEAR(sum / 10000, 0.5, 0.02);  // sd of the mean is 0.0029: 7 sigma
}

// ---------------------------------------------------------------------------- correctness

struct Dims {
  int64_t m, k, n;
};
const std::vector<Dims> kShapes = {{1, 1, 1},   {1, 7, 1},    {5, 1, 3},      {3, 5, 7},
                                   {17, 33, 9}, {64, 64, 64}, {128, 37, 200}, {1, 300, 130}};

TEST(CryptoMatmul, DecryptedBlindedProductEqualsPlainProduct) {
  Rng rng(11);
  crypto::KeyGenerator gen;
  for (const Dims& d : kShapes) {
    const Tensor a = random_matrix(d.m, d.k, rng), b = random_matrix(d.k, d.n, rng);
    const MatmulKey key = gen.matmul_key(d.m, d.k, d.n);
    const crypto::MatmulEncryptor enc(key);
    const BlindedTensor ab = enc.encrypt_a(a), bb = enc.encrypt_b(b);
    const Tensor c = crypto::MatmulDecryptor(key).decrypt(worker_gemm(ab, bb, false, false));
    expect_within_fp_bound(c, plain_gemm(a, b), plain_gemm(abs_of(a), abs_of(b)), d.k);
  }
}

TEST(CryptoMatmul, BlindedEntriesFollowTheDocumentedConvention) {
  Rng rng(12);
  const MatmulKey key = KeyGenerator().matmul_key(4, 5, 6);
  const Tensor a = random_matrix(4, 5, rng), b = random_matrix(5, 6, rng);
  const crypto::MatmulEncryptor enc(key);
  const Tensor ab = to_tensor(enc.encrypt_a(a)), bb = to_tensor(enc.encrypt_b(b));
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 5; ++j)
      EXPECT_EQ(ab[i * 5 + j],
                key.m.scale()[i] * a[key.m.perm()[i] * 5 + key.k.perm()[j]] * key.k.scale()[j]);
  for (int j = 0; j < 5; ++j)
    for (int l = 0; l < 6; ++l)
      EXPECT_EQ(bb[j * 6 + l],
                key.k.inv_scale()[j] * b[key.k.perm()[j] * 6 + key.n.perm()[l]] * key.n.scale()[l]);
}

// Sequential float dot products in the stored order of the inner index.
Tensor ordered_product(const Tensor& a, const Tensor& b) {
  const int64_t m = a.dim(0), k = a.dim(1), n = b.dim(1);
  Tensor c({m, n});
  for (int64_t i = 0; i < m; ++i)
    for (int64_t l = 0; l < n; ++l) {
      float s = 0.0f;
      for (int64_t j = 0; j < k; ++j) s += a[i * k + j] * b[j * n + l];
      c[i * n + l] = s;
    }
  return c;
}

TEST(CryptoMatmul, PowerOfTwoScalesChangeNothingButSummationOrder) {
  // With power-of-two scales every blinded partial sum is the plaintext partial sum times
  // r_i·u_l exactly, so a worker summing in the blinded order produces, after decryption, the
  // bit-exact plaintext product summed in the order pi_k.
  Rng rng(13);
  for (const Dims& d : kShapes) {
    const Tensor a = random_matrix(d.m, d.k, rng), b = random_matrix(d.k, d.n, rng);
    const MatmulKey key = KeyGenerator().matmul_key(d.m, d.k, d.n);
    const crypto::MatmulEncryptor enc(key);
    const Tensor c_blind =
        ordered_product(to_tensor(enc.encrypt_a(a)), to_tensor(enc.encrypt_b(b)));
    BlindedTensor cb = BlindedTensor::allocate(c_blind.shape());
    std::copy(c_blind.data(), c_blind.data() + c_blind.numel(), cb.mutable_data());
    const Tensor got = crypto::MatmulDecryptor(key).decrypt(cb);
    // The plaintext product, summed in the order pi_k.
    Tensor a_perm({d.m, d.k}), b_perm({d.k, d.n});
    for (int64_t i = 0; i < d.m; ++i)
      for (int64_t j = 0; j < d.k; ++j) a_perm[i * d.k + j] = a[i * d.k + key.k.perm()[j]];
    for (int64_t j = 0; j < d.k; ++j)
      for (int64_t l = 0; l < d.n; ++l) b_perm[j * d.n + l] = b[key.k.perm()[j] * d.n + l];
    const Tensor want = ordered_product(a_perm, b_perm);
    for (int64_t i = 0; i < want.numel(); ++i) ASSERT_EQ(got[i], want[i]) << "element " << i;
  }
}

TEST(CryptoMatmul, LogUniformScalesDecryptWithinAFewUlps) {
  ObfuscationParams p;
  p.distribution = crypto::ScaleDistribution::kLogUniform;
  Rng rng(14);
  const crypto::MatmulObfuscator obf(p);
  for (const Dims& d : kShapes) {
    const Tensor a = random_matrix(d.m, d.k, rng), b = random_matrix(d.k, d.n, rng);
    crypto::MatmulForward fw = obf.encrypt(a, b);
    const Tensor c = fw.decrypt(worker_gemm(fw.x(), fw.w(), false, false));
    // Each of the 4 scalings of a term rounds once more: relative error <= ~6 ulps per term.
    expect_within_fp_bound(c, plain_gemm(a, b), plain_gemm(abs_of(a), abs_of(b)), d.k, 8e-7);
  }
}

TEST(CryptoMatmul, ShapesThatDoNotFitTheKeyAreRejected) {
  const MatmulKey key = KeyGenerator().matmul_key(3, 4, 5);
  const crypto::MatmulEncryptor enc(key);
  EXPECT_THROW(enc.encrypt_a(Tensor({4, 3})), std::invalid_argument);
  EXPECT_THROW(enc.encrypt_b(Tensor({4, 6})), std::invalid_argument);
  EXPECT_THROW(enc.encrypt_a(Tensor({12})), std::invalid_argument);
  EXPECT_THROW(crypto::MatmulDecryptor(key).decrypt(BlindedTensor::allocate({3, 4})),
               std::invalid_argument);
  EXPECT_THROW(crypto::MatmulObfuscator().encrypt(Tensor({2, 3}), Tensor({4, 2})),
               std::invalid_argument);
}

// ---------------------------------------------------------------------------- backward (sec. 4)

// Both gradient operands blinded separately, or in one pass over dY (encrypt_grads, what the
// offload engine uses for Linear layers).
TEST(CryptoMatmul, KeyShiftGivesInputAndWeightGradientsFromCachedOperands) {
  Rng rng(15);
  const crypto::MatmulObfuscator obf;
  for (bool one_pass : {false, true}) {
    for (const Dims& d : kShapes) {
      SCOPED_TRACE(one_pass ? "encrypt_grads" : "encrypt_grad_for_dx, encrypt_grad_for_dw");
      const Tensor x = random_matrix(d.m, d.k, rng), w = random_matrix(d.k, d.n, rng);
      const Tensor dy = random_matrix(d.m, d.n, rng);
      crypto::MatmulForward fw = obf.encrypt(x, w);
      const BlindedTensor x_cached = fw.x(), w_cached = fw.w();  // the worker's cache
      fw.release_operands();
      BlindedTensor g_dx, g_dw;
      if (one_pass) {
        std::tie(g_dx, g_dw) = fw.encrypt_grads(dy);
      } else {
        g_dx = fw.encrypt_grad_for_dx(dy);
        g_dw = fw.encrypt_grad_for_dw(dy);
      }
      // dX = dY·W^T from dX' = dY'1 · W'^T.
      const Tensor dx = fw.decrypt_dx(worker_gemm(g_dx, w_cached, false, true));
      expect_within_fp_bound(dx, plain_gemm(dy, w, false, true),
                             plain_gemm(abs_of(dy), abs_of(w), false, true), d.n);
      // dW = X^T·dY from dW' = X'^T · dY'2.
      const Tensor dw = fw.decrypt_dw(worker_gemm(x_cached, g_dw, true, false));
      expect_within_fp_bound(dw, plain_gemm(x, dy, true, false),
                             plain_gemm(abs_of(x), abs_of(dy), true, false), d.m);
    }
  }
}

TEST(CryptoMatmul, GradientKeysAreFreshAndDistinctFromTheForwardKey) {
  Rng rng(16);
  const Tensor x = random_matrix(64, 32, rng), w = random_matrix(32, 48, rng);
  const Tensor dy = random_matrix(64, 48, rng);
  crypto::MatmulForward fw = crypto::MatmulObfuscator().encrypt(x, w);
  const Tensor g1 = to_tensor(fw.encrypt_grad_for_dx(dy));
  const Tensor g2 = to_tensor(fw.encrypt_grad_for_dx(dy));
  // A re-encryption draws a new (pi_b1, r1): the two blinded gradients differ.
  EXPECT_NE(std::vector<float>(g1.data(), g1.data() + g1.numel()),
            std::vector<float>(g2.data(), g2.data() + g2.numel()));
}

TEST(CryptoMatmul, DecryptingAGradientBeforeEncryptingItThrows) {
  Rng rng(17);
  crypto::MatmulForward fw =
      crypto::MatmulObfuscator().encrypt(random_matrix(3, 4, rng), random_matrix(4, 5, rng));
  EXPECT_THROW(fw.decrypt_dx(BlindedTensor::allocate({3, 4})), std::logic_error);
  EXPECT_THROW(fw.decrypt_dw(BlindedTensor::allocate({4, 5})), std::logic_error);
}

// ---------------------------------------------------------------------------- batched

Tensor plain_batched(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  const int64_t batch = a.dim(0);
  const int64_t m = ta ? a.dim(2) : a.dim(1), k = ta ? a.dim(1) : a.dim(2);
  const int64_t n = tb ? b.dim(1) : b.dim(2);
  Tensor c({batch, m, n});
  for (int64_t i = 0; i < batch; ++i)
    blas::gemm(ta, tb, m, n, k, 1.0f, a.data() + i * a.dim(1) * a.dim(2),
               b.data() + i * b.dim(1) * b.dim(2), 0.0f, c.data() + i * m * n);
  return c;
}

TEST(CryptoBatchedMatmul, DecryptedBlindedBatchedProductEqualsPlainForAllTransposeFlags) {
  Rng rng(18);
  const crypto::BatchedMatmulObfuscator obf;
  for (auto [batch, m, k, n] : std::vector<std::tuple<int64_t, int64_t, int64_t, int64_t>>{
           {1, 1, 1, 1}, {3, 5, 7, 2}, {8, 16, 8, 16}, {5, 33, 1, 17}})
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        Tensor a({batch, ta ? k : m, ta ? m : k}), b({batch, tb ? n : k, tb ? k : n});
        for (int64_t i = 0; i < a.numel(); ++i) a[i] = static_cast<float>(rng.normal());
        for (int64_t i = 0; i < b.numel(); ++i) b[i] = static_cast<float>(rng.normal());
        const crypto::BatchedMatmulProduct p = obf.encrypt(a, b, ta, tb);
        EXPECT_EQ(p.a().shape(), a.shape());
        // The worker: same batched GEMM, same flags, on blinded operands.
        const Tensor cb = plain_batched(to_tensor(p.a()), to_tensor(p.b()), ta, tb);
        BlindedTensor c_blind = BlindedTensor::allocate(cb.shape());
        std::copy(cb.data(), cb.data() + cb.numel(), c_blind.mutable_data());
        const Tensor c = p.decrypt(c_blind);
        expect_within_fp_bound(c, plain_batched(a, b, ta, tb),
                               plain_batched(abs_of(a), abs_of(b), ta, tb), k);
      }
}

// The key shift per entry (attention's backward): dA and dB from the cached A', B' and the
// twice-blinded dC only, for both layouts of B (Q·K^T: trans_b; A·V: not).
TEST(CryptoBatchedMatmul, KeyShiftGivesBothGradientsFromCachedOperands) {
  Rng rng(19);
  const crypto::BatchedMatmulObfuscator obf;
  auto blinded = [](const Tensor& t) {
    BlindedTensor b = BlindedTensor::allocate(t.shape());
    std::copy(t.data(), t.data() + t.numel(), b.mutable_data());
    return b;
  };
  for (auto [batch, m, k, n] : std::vector<std::tuple<int64_t, int64_t, int64_t, int64_t>>{
           {1, 1, 1, 1}, {3, 5, 7, 2}, {8, 16, 8, 16}, {5, 33, 1, 17}})
    for (bool tb : {false, true}) {
      SCOPED_TRACE("batch " + std::to_string(batch) + (tb ? " B^T" : " B"));
      Tensor a({batch, m, k}), b({batch, tb ? n : k, tb ? k : n}), dc({batch, m, n});
      for (Tensor* t : {&a, &b, &dc})
        for (int64_t i = 0; i < t->numel(); ++i) (*t)[i] = static_cast<float>(rng.normal());
      crypto::BatchedMatmulForward fw = obf.encrypt_forward(a, b, tb);
      const Tensor a_cached = to_tensor(fw.x()), b_cached = to_tensor(fw.w());  // the worker's
      fw.release_operands();
      // dA = dC·op(B)^T from dA' = dC'1·op(B')^T.
      const Tensor dc1 = to_tensor(fw.encrypt_grad_for_dx(dc));
      const Tensor da = fw.decrypt_dx(blinded(plain_batched(dc1, b_cached, false, !tb)));
      expect_within_fp_bound(da, plain_batched(dc, b, false, !tb),
                             plain_batched(abs_of(dc), abs_of(b), false, !tb), n);
      // dB (B's layout) from A'^T·dC'2, or dC'2^T·A'.
      const Tensor dc2 = to_tensor(fw.encrypt_grad_for_dw(dc));
      const Tensor db_blind = tb ? plain_batched(dc2, a_cached, true, false)
                                 : plain_batched(a_cached, dc2, true, false);
      const Tensor db = fw.decrypt_dw(blinded(db_blind));
      const Tensor want =
          tb ? plain_batched(dc, a, true, false) : plain_batched(a, dc, true, false);
      const Tensor bound = tb ? plain_batched(abs_of(dc), abs_of(a), true, false)
                              : plain_batched(abs_of(a), abs_of(dc), true, false);
      expect_within_fp_bound(db, want, bound, m);
      // The gradients travel under fresh keys: neither blinded gradient is the other's.
      if (dc.numel() > 1) {
        EXPECT_NE(0, std::memcmp(dc1.data(), dc2.data(), static_cast<size_t>(dc.numel()) * 4));
      }
    }
}

/// For a RowProjection of every entry's rows of t [batch, rows, cols] (rounds >= 1, ±1 vectors,
/// abs weights 1): the expected values, summed directly in double.
void expect_entry_row_projections(const BlindedTensor& t, const std::vector<double>& vecs,
                                  int rounds, const std::vector<double>& out,
                                  const std::vector<double>& out_abs) {
  const int64_t batch = t.dim(0), rows = t.dim(1), cols = t.dim(2);
  for (int64_t e = 0; e < batch; ++e)
    for (int64_t i = 0; i < rows; ++i) {
      const float* row = t.data() + (e * rows + i) * cols;
      double abs_sum = 0.0;
      for (int64_t j = 0; j < cols; ++j) abs_sum += std::fabs(static_cast<double>(row[j]));
      // Both sides sum the same exact products of float entries and ±1, this one in double, the
      // kernel in double or in fp32 lanes (integrity::projection_relative_bound).
      const double tol = (std::ldexp(1.0, -50) * static_cast<double>(cols + 2) +
                          integrity::projection_relative_bound(cols)) *
                         abs_sum;
      ASSERT_NEAR(out_abs[static_cast<size_t>(e * rows + i)], abs_sum, tol) << e << "/" << i;
      for (int r = 0; r < rounds; ++r) {
        double sum = 0.0;
        for (int64_t j = 0; j < cols; ++j)
          sum +=
              static_cast<double>(row[j]) * vecs[static_cast<size_t>((e * rounds + r) * cols + j)];
        ASSERT_NEAR(out[static_cast<size_t>((e * rounds + r) * rows + i)], sum, tol)
            << "entry " << e << ", row " << i << ", round " << r;
      }
    }
}

// A batched product's operands and both output-gradient blindings, each with a projection of the
// rows it writes (laid out by blinded entry): the tensors are bit-identical to the unprojected
// calls, the two gradient blindings of one pass to the two separate calls, and every row of every
// entry is projected as if read afterwards.
TEST(CryptoBatchedMatmul, BlindingsProjectTheRowsTheyWriteAndOnePassEqualsTwo) {
  Rng rng(31);
  const KeyGenerator keygen;
  for (auto [entries, m, k, n] : std::vector<std::tuple<int64_t, int64_t, int64_t, int64_t>>{
           {1, 1, 1, 1}, {3, 5, 7, 2}, {4, 64, 16, 64}, {8, 64, 64, 16}, {2, 33, 9, 70}})
    for (int rounds : {1, 2}) {
      const int64_t batch = entries;  // clang 14 cannot capture bindings
      SCOPED_TRACE("batch " + std::to_string(batch) + ", rounds " + std::to_string(rounds));
      const crypto::BatchedMatmulKey key = keygen.batched_matmul_key(batch, m, k, n);
      const crypto::BatchedMatmulEncryptor enc(key);
      const std::vector<DimKey> da_rows = keygen.dim_keys(batch, m),
                                db_cols = keygen.dim_keys(batch, n);
      auto random = [&](const Shape& shape) {
        Tensor t(shape);
        for (int64_t i = 0; i < t.numel(); ++i) t[i] = static_cast<float>(rng.normal());
        return t;
      };
      auto signs = [&](int64_t count) {
        std::vector<double> v(static_cast<size_t>(count));
        for (double& x : v) x = rng.uniform() < 0.5 ? -1.0 : 1.0;
        return v;
      };
      // Each call with its projection of rows of `cols` floats ([batch][rounds][rows] outputs).
      auto projected = [&](int64_t rows, int64_t cols, auto blind) {
        const std::vector<double> vecs = signs(batch * rounds * cols);
        std::vector<double> out(static_cast<size_t>(batch * rounds * rows), NAN);
        std::vector<double> out_abs(static_cast<size_t>(batch * rows), NAN);
        const crypto::RowProjection p{vecs.data(), rounds, rows, out.data(), out_abs.data()};
        const BlindedTensor with = blind(&p), without = blind(nullptr);
        EXPECT_EQ(0, std::memcmp(with.data(), without.data(), static_cast<size_t>(with.bytes())));
        expect_entry_row_projections(with, vecs, rounds, out, out_abs);
      };
      const Tensor a = random({batch, m, k}), b = random({batch, k, n}), bt = random({batch, n, k});
      projected(m, k, [&](const crypto::RowProjection* p) { return enc.encrypt_a(a, false, p); });
      projected(k, n, [&](const crypto::RowProjection* p) { return enc.encrypt_b(b, false, p); });
      projected(n, k, [&](const crypto::RowProjection* p) { return enc.encrypt_b(bt, true, p); });
      const Tensor dc = random({batch, m, n});
      const std::vector<double> v1 = signs(batch * rounds * n), v2 = signs(batch * rounds * n);
      std::vector<double> out1(static_cast<size_t>(batch * rounds * m)),
          abs1(static_cast<size_t>(batch * m));
      std::vector<double> out2(out1.size()), abs2(abs1.size());
      const crypto::RowProjection p1{v1.data(), rounds, m, out1.data(), abs1.data()};
      const crypto::RowProjection p2{v2.data(), rounds, m, out2.data(), abs2.data()};
      const auto [g1, g2] = enc.encrypt_grads(dc, da_rows, db_cols, &p1, &p2);
      const BlindedTensor one = enc.encrypt_grad_for_da(dc, da_rows);
      const BlindedTensor two = enc.encrypt_grad_for_db(dc, db_cols);
      ASSERT_EQ(0, std::memcmp(g1.data(), one.data(), static_cast<size_t>(one.bytes())));
      ASSERT_EQ(0, std::memcmp(g2.data(), two.data(), static_cast<size_t>(two.bytes())));
      expect_entry_row_projections(g1, v1, rounds, out1, abs1);
      expect_entry_row_projections(g2, v2, rounds, out2, abs2);
      if (dc.numel() > 1) {
        EXPECT_NE(0, std::memcmp(g1.data(), g2.data(), static_cast<size_t>(g1.bytes())));
      }
    }
}

TEST(CryptoBatchedMatmul, GradientDecryptionBeforeItsEncryptionThrows) {
  const Tensor a({2, 3, 4}), b({2, 4, 5});
  crypto::BatchedMatmulForward fw = crypto::BatchedMatmulObfuscator().encrypt_forward(a, b, false);
  EXPECT_THROW(fw.decrypt_dx(BlindedTensor::allocate({2, 3, 4})), std::logic_error);
  EXPECT_THROW(fw.decrypt_dw(BlindedTensor::allocate({2, 4, 5})), std::logic_error);
  fw.encrypt_grad_for_dx(Tensor({2, 3, 5}));
  EXPECT_THROW(fw.decrypt_dx(BlindedTensor::allocate({2, 4, 3})), std::invalid_argument);
}

TEST(CryptoBatchedMatmul, BatchIndexIsPermutedAndEachEntryHasItsOwnKey) {
  const crypto::BatchedMatmulKey key = KeyGenerator().batched_matmul_key(16, 8, 8, 8);
  EXPECT_TRUE(key.batch.is_valid());
  ASSERT_EQ(key.entries.size(), 16u);
  EXPECT_NE(vec(key.entries[0].k.perm()), vec(key.entries[1].k.perm()));
  const DimKey identity = DimKey::identity(16);
  EXPECT_NE(vec(key.batch.perm()), vec(identity.perm()));  // fails with probability 1/16!
}

TEST(CryptoBatchedMatmul, MismatchedOperandsAreRejected) {
  const crypto::BatchedMatmulObfuscator obf;
  EXPECT_THROW(obf.encrypt(Tensor({2, 3, 4}), Tensor({2, 5, 6}), false, false),
               std::invalid_argument);
  EXPECT_THROW(obf.encrypt(Tensor({2, 3, 4}), Tensor({3, 4, 6}), false, false),
               std::invalid_argument);
}

// ---------------------------------------------------------------------------- key space (sec. 6)

TEST(CryptoKeySpace, CountsPermutationAndScaleBits) {
  EXPECT_DOUBLE_EQ(crypto::KeySpace::log2_factorial(1), 0.0);
  EXPECT_NEAR(crypto::KeySpace::log2_factorial(4), std::log2(24.0), 1e-12);
  EXPECT_NEAR(crypto::KeySpace::log2_factorial(20), std::log2(2432902008176640000.0), 1e-9);
  const crypto::KeySpace ks;  // sigma = 8, power of two, signed inner scale
  EXPECT_NEAR(ks.scale_bits_per_entry(false), std::log2(17.0), 1e-12);
  EXPECT_NEAR(ks.scale_bits_per_entry(true), std::log2(17.0) + 1.0, 1e-12);
  const crypto::OperationKeySpace op = ks.matmul(64, 32, 10);
  ASSERT_EQ(op.tensors.size(), 4u);
  const double rows = crypto::KeySpace::log2_factorial(64) + 64 * std::log2(17.0);
  const double inner = crypto::KeySpace::log2_factorial(32) + 32 * (std::log2(17.0) + 1.0);
  const double cols = crypto::KeySpace::log2_factorial(10) + 10 * std::log2(17.0);
  EXPECT_NEAR(op.tensors[0].bits(), rows + inner, 1e-6);  // X'
  EXPECT_NEAR(op.tensors[1].bits(), inner + cols, 1e-6);  // W'
  EXPECT_NEAR(op.forward_key_bits, rows + inner + cols, 1e-6);
  EXPECT_NE(op.summary().find("X'"), std::string::npos);
  ObfuscationParams none;
  none.sigma = 0;
  none.signed_inner_scale = false;
  EXPECT_NEAR(crypto::KeySpace(none).matmul(64, 32, 10).tensors[0].bits(),
              crypto::KeySpace::log2_factorial(64) + crypto::KeySpace::log2_factorial(32), 1e-6);
}

TEST(CryptoKeySpace, PatchModeHidesMoreThanChannelMode) {
  const crypto::KeySpace ks;
  const auto s = crypto::ConvShape::of({32, 64, 16, 16}, {64, 64, 3, 3}, {1, 1, 1, 1});
  const double channel = ks.conv_channel(s).tensors[0].bits();
  const double patch = ks.patch_conv(s).tensors[0].bits();
  EXPECT_GT(patch, channel);
  EXPECT_NEAR(channel,
              crypto::KeySpace::log2_factorial(32) + 32 * std::log2(17.0) +
                  crypto::KeySpace::log2_factorial(64) + 64 * (std::log2(17.0) + 1),
              1e-6);
}

}  // namespace
}  // namespace tempo
