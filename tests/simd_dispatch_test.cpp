// The double-precision kernels of the integrity checks in both their versions (simd.h): AVX2 and,
// where the CPU has it, AVX-512. Each version must equal the exact (long double) sums within the
// rounding of a double sum, on lengths around the vector and tile widths of both.
#include <gtest/gtest.h>

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "crypto_test_util.h"
#include "gradcheck.h"
#include "master/core/simd.h"
#include "master/crypto/crypto.h"
#include "master/crypto/patch_conv_encryptor.h"
#include "master/crypto/row_projection.h"
#include "master/integrity/error_bound.h"
#include "master/integrity/projection.h"

namespace tempo {
namespace {

/// Runs `body` once per kernel version this CPU has, with that version selected; restores the
/// selection afterwards.
template <class Body>
void for_each_level(Body body) {
  const bool before = simd::use_avx512(false);
  {
    SCOPED_TRACE("avx2");
    body();
  }
  if (simd::cpu_has_avx512()) {
    simd::use_avx512(true);
    ASSERT_TRUE(simd::avx512());
    SCOPED_TRACE("avx512");
    body();
  } else {
    std::printf("[ SKIPPED  ] the AVX-512 kernels: this CPU has no AVX-512\n");
  }
  simd::use_avx512(before);
}

std::vector<float> random_floats(int64_t n, Rng& rng) {
  std::vector<float> v(static_cast<size_t>(n));
  for (float& e : v) e = static_cast<float>(rng.normal());
  return v;
}

/// |got - want| within the rounding of a double sum of `terms` terms whose magnitudes sum to
/// `mass` (a bound any summation order meets).
void expect_close(double got, long double want, long double mass, int64_t terms) {
  const long double u = std::ldexp(1.0L, -53) * static_cast<long double>(terms + 2);
  EXPECT_LE(std::fabs(static_cast<long double>(got) - want), u * mass);
}

TEST(SimdKernels, RowSumsEqualTheExactSumsInEveryVersion) {
  Rng rng(11);
  for (int64_t n : {1, 3, 4, 7, 8, 15, 16, 17, 31, 32, 33, 47, 48, 63, 64, 65, 100, 576, 1001}) {
    SCOPED_TRACE("n = " + std::to_string(n));
    const std::vector<float> row = random_floats(n, rng);
    std::vector<double> w(static_cast<size_t>(n)), w_abs(static_cast<size_t>(n));
    for (size_t j = 0; j < w.size(); ++j) {
      w[j] = rng.normal();
      w_abs[j] = std::fabs(rng.normal());
    }
    long double sum = 0, mass = 0, abs_sum = 0, abs_weighted = 0, plain = 0;
    for (size_t j = 0; j < w.size(); ++j) {
      const long double x = row[j];
      sum += x * w[j];
      mass += std::fabs(x * w[j]);
      plain += x;
      abs_sum += std::fabs(x);
      abs_weighted += std::fabs(x) * w_abs[j];
    }
    for_each_level([&] {
      expect_close(crypto::row_sum<false, true>(row.data(), w.data(), n), sum, mass, n);
      expect_close(crypto::row_sum<false, false>(row.data(), nullptr, n), plain, abs_sum, n);
      expect_close(crypto::row_sum<true, false>(row.data(), nullptr, n), abs_sum, abs_sum, n);
      expect_close(crypto::row_sum<true, true>(row.data(), w_abs.data(), n), abs_weighted,
                   abs_weighted, n);
      double s = NAN, a = NAN;
      crypto::row_sum_and_abs<false>(row.data(), w.data(), nullptr, n, &s, &a);
      expect_close(s, sum, mass, n);
      expect_close(a, abs_sum, abs_sum, n);
      crypto::row_sum_and_abs<true>(row.data(), w.data(), w_abs.data(), n, &s, &a);
      expect_close(s, sum, mass, n);
      expect_close(a, abs_weighted, abs_weighted, n);
    });
  }
}

/// Checks integrity::project's result against exact sums: out_abs[i] = Σ_j |op(M)[i][j]|·x_abs[j]
/// and out[r·R + i] = Σ_j op(M)[i][j]·x[r·K + j], with op(M)[i][j] = m[i·row_stride +
/// j·col_stride].
void expect_exact_projection(const std::vector<float>& m, int64_t R, int64_t K, int64_t row_stride,
                             int64_t col_stride, const std::vector<double>& x,
                             const std::vector<double>& x_abs, int rounds,
                             const std::vector<double>& out, const std::vector<double>& out_abs) {
  for (int64_t i = 0; i < R; ++i) {
    const auto entry = [&](int64_t j) {
      return static_cast<long double>(m[static_cast<size_t>(i * row_stride + j * col_stride)]);
    };
    long double a = 0;
    for (int64_t j = 0; j < K; ++j) a += std::fabs(entry(j)) * x_abs[static_cast<size_t>(j)];
    expect_close(out_abs[static_cast<size_t>(i)], a, a, K);
    for (int r = 0; r < rounds; ++r) {
      long double s = 0, mass = 0;
      for (int64_t j = 0; j < K; ++j) {
        const long double t = entry(j) * x[static_cast<size_t>(r * K + j)];
        s += t;
        mass += std::fabs(t);
      }
      expect_close(out[static_cast<size_t>(r * R + i)], s, mass, K);
    }
  }
}

TEST(SimdKernels, RowProjectionsEqualTheExactSumsInEveryVersion) {
  Rng rng(13);
  // Rows up to 32 floats go 8 at a time through one reduction on AVX-512: row counts around the
  // tile of 8 and widths around its 8-double chunks; longer rows one at a time.
  for (int64_t R : {1, 7, 8, 9, 17, 64}) {
    for (int64_t K : {0, 1, 5, 8, 16, 17, 31, 32, 33}) {
      SCOPED_TRACE(std::to_string(R) + "x" + std::to_string(K));
      const std::vector<float> m = random_floats(R * K, rng);
      const int rounds = 2;
      std::vector<double> x(static_cast<size_t>(rounds * K)), x_abs(static_cast<size_t>(K));
      for (double& e : x) e = rng.normal();
      for (double& e : x_abs) e = std::fabs(rng.normal());
      for_each_level([&] {
        std::vector<double> out(static_cast<size_t>(rounds * R), NAN);
        std::vector<double> out_abs(static_cast<size_t>(R), NAN);
        integrity::project(m.data(), R, K, false, x.data(), x_abs.data(), rounds, out.data(),
                           out_abs.data(), false);
        expect_exact_projection(m, R, K, K, 1, x, x_abs, rounds, out, out_abs);
      });
    }
  }
}

TEST(SimdKernels, ColumnProjectionsEqualTheExactSumsInEveryVersion) {
  Rng rng(12);
  // op(M) = Mᵀ, M stored [K, R]: R around the 512-row blocks, K short and long; narrow and large
  // (one block: threads split the rows, as for a Linear layer's X' in a backward-weights check).
  for (const auto& shape :
       {std::pair<int64_t, int64_t>{3, 5}, {64, 513}, {257, 1100}, {4096, 64}, {777, 300}}) {
    const int64_t K = shape.first, R = shape.second;
    SCOPED_TRACE(std::to_string(K) + "x" + std::to_string(R));
    const std::vector<float> m = random_floats(K * R, rng);
    const int rounds = 2;
    std::vector<double> x(static_cast<size_t>(rounds * K)), x_abs(static_cast<size_t>(K));
    for (double& e : x) e = rng.normal();
    for (double& e : x_abs) e = std::fabs(rng.normal());
    for_each_level([&] {
      std::vector<double> out(static_cast<size_t>(rounds * R)), out_abs(static_cast<size_t>(R));
      integrity::project(m.data(), K, R, true, x.data(), x_abs.data(), rounds, out.data(),
                         out_abs.data(), true);
      expect_exact_projection(m, R, K, 1, R, x, x_abs, rounds, out, out_abs);
    });
  }
}

TEST(SimdKernels, PatchInputProjectionEqualsTheExactSumsInEveryVersion) {
  Rng rng(13);
  crypto::ObfuscationParams params;  // the projection from the input needs exact scaling
  params.patch_distribution = crypto::ScaleDistribution::kPowerOfTwo;
  const crypto::KeyGenerator keygen(params);
  struct Case {
    Shape x, w;
    nn::ConvGeometry g;
  };
  // Output heights not a multiple of the 2- and 4-row tiles, widths around the 8-wide tiles,
  // stride 2, a 1x1 kernel.
  for (const Case& c : {Case{{2, 3, 7, 5}, {4, 3, 3, 3}, {1, 1, 1, 1}},
                        Case{{2, 2, 10, 19}, {3, 2, 3, 3}, {1, 1, 1, 1}},
                        Case{{3, 2, 13, 21}, {3, 2, 3, 3}, {2, 2, 1, 1}},
                        Case{{2, 4, 6, 9}, {5, 4, 1, 1}, {1, 1, 0, 0}}}) {
    SCOPED_TRACE(c.x.to_string() + " * " + c.w.to_string());
    const auto s = crypto::ConvShape::of(c.x, c.w, c.g);
    const int64_t m = s.positions(), k = s.patch();
    const crypto::PatchConvKey key = keygen.patch_conv_key(m, k, s.out_channels);
    const crypto::PatchConvEncryptor enc(key, s);
    const Tensor x = testing::random_tensor(c.x, rng);
    const BlindedTensor xb = enc.encrypt_input(x);
    for (int rounds : {1, 3, 6}) {
      std::vector<double> v(static_cast<size_t>(rounds * k)), v_abs(static_cast<size_t>(k));
      for (double& e : v) e = rng.normal();
      for (double& e : v_abs) e = 2.0 + std::fabs(rng.normal());  // >= |v| mostly, not needed
      for_each_level([&] {
        std::vector<double> out(static_cast<size_t>(rounds * m)), out_abs(static_cast<size_t>(m));
        ASSERT_TRUE(enc.project_input(x, v.data(), v_abs.data(), rounds, out.data(), out_abs.data(),
                                      keygen.params().sigma));
        for (int64_t i = 0; i < m; ++i) {
          const float* row = xb.data() + i * k;
          long double a = 0;
          for (int64_t j = 0; j < k; ++j)
            a += std::fabs(static_cast<long double>(row[j])) * v_abs[j];
          expect_close(out_abs[i], a, a, k);
          for (int r = 0; r < rounds; ++r) {
            long double sum = 0, mass = 0;
            for (int64_t j = 0; j < k; ++j) {
              const long double t = static_cast<long double>(row[j]) * v[r * k + j];
              sum += t;
              mass += std::fabs(t);
            }
            expect_close(out[r * m + i], sum, mass, k);
          }
        }
      });
    }
  }
}

/// RowProjection::project8 of 8 rows of n floats on `rounds` ±1 vectors, unweighted (a result's
/// or a B side's projection: the fp32 lanes on AVX-512) or weighted by w_abs; returns the largest
/// error of out and out_abs against the exact sums, as a fraction of each row's absolute mass.
double project8_worst_error(const std::vector<float>& m, int64_t n, const std::vector<double>& v,
                            int rounds, const double* w_abs) {
  std::vector<double> out(static_cast<size_t>(rounds * 8), NAN), out_abs(8, NAN);
  const crypto::RowProjection p{v.data(), rounds, 8, out.data(), out_abs.data(), w_abs};
  const float* rows[8];
  int64_t index[8];
  for (int64_t k = 0; k < 8; ++k) {
    rows[k] = m.data() + k * n;
    index[k] = k;
  }
  p.project8(rows, n, index);
  double worst = 0.0;
  for (int64_t k = 0; k < 8; ++k) {
    long double mass = 0, abs_sum = 0;
    for (int64_t j = 0; j < n; ++j) {
      const long double x = std::fabs(static_cast<long double>(rows[k][j]));
      mass += x;
      abs_sum += x * (w_abs ? w_abs[j] : 1.0);
    }
    for (int r = 0; r < rounds; ++r) {
      long double exact = 0;
      for (int64_t j = 0; j < n; ++j)
        exact += static_cast<long double>(rows[k][j]) * v[static_cast<size_t>(r * n + j)];
      worst = std::max(worst, static_cast<double>(
                                  std::fabs(out[static_cast<size_t>(r * 8 + k)] - exact) / mass));
    }
    worst = std::max(
        worst, static_cast<double>(std::fabs(out_abs[static_cast<size_t>(k)] - abs_sum) / abs_sum));
  }
  return worst;
}

// The check's sign projections of 8 rows (RowProjection::project8): on AVX-512 in fp32 lanes,
// within integrity::projection_relative_bound of the exact sums, on rows of a wide dynamic range
// with cancellation; weighted ones, and every projection of a thread that flushes subnormals
// (MXCSR FTZ/DAZ), within the rounding of a double sum. A row whose small terms fp32 drops (1
// then 2^-30s) shows which arithmetic ran.
TEST(SimdKernels, SignProjectionsOfEightRowsStayWithinTheFp32LaneBound) {
  Rng rng(17);
  const int rounds = 2;
  for (int64_t n : {1, 2, 15, 16, 17, 31, 33, 64, 65, 100, 576, 1001, 4608}) {
    SCOPED_TRACE("n = " + std::to_string(n));
    std::vector<float> m(static_cast<size_t>(8 * n));
    for (float& e : m)
      e = static_cast<float>(std::ldexp(rng.normal(), static_cast<int>(rng.uniform() * 40) - 20));
    std::vector<double> v(static_cast<size_t>(rounds * n)), w_abs(static_cast<size_t>(n));
    for (double& e : v) e = rng.uniform() < 0.5 ? -1.0 : 1.0;
    for (double& e : w_abs) e = std::fabs(rng.normal());
    const double double_bound = std::ldexp(1.0, -53) * static_cast<double>(n + 2);
    for_each_level([&] {
      EXPECT_LE(project8_worst_error(m, n, v, rounds, nullptr),
                integrity::projection_relative_bound(n));
      EXPECT_LE(project8_worst_error(m, n, v, rounds, w_abs.data()), double_bound);
    });
  }
  // Terms fp32 drops: 1 + 2^-30 + ... rounds to 1 in fp32, not in double.
  const int64_t n = 64;
  std::vector<float> m(static_cast<size_t>(8 * n), 0x1p-30f);
  for (int64_t k = 0; k < 8; ++k) m[static_cast<size_t>(k * n)] = 1.0f;
  const std::vector<double> v(static_cast<size_t>(n), 1.0);
  const double double_bound = std::ldexp(1.0, -53) * static_cast<double>(n + 2);
  if (simd::cpu_has_avx512()) {
    const bool before = simd::use_avx512(true);
    EXPECT_GT(project8_worst_error(m, n, v, 1, nullptr), double_bound) << "fp32 lanes ran";
    const unsigned csr = _mm_getcsr();
    _mm_setcsr(csr | 0x8040u);  // flush-to-zero and denormals-are-zero
    EXPECT_LE(project8_worst_error(m, n, v, 1, nullptr), double_bound) << "double lanes ran";
    _mm_setcsr(csr);
    simd::use_avx512(before);
  }
}

// integrity::project_signs (a check's B side and C·v on its ±1 vectors; fp32 lanes on AVX-512):
// rows and columns of every width around the tiles, each sum within projection_relative_bound of
// the exact one; and sums past FLT_MAX (64 entries of 10^37) come back finite (rows: redone in
// double; columns: fp32 only within chunks).
TEST(SimdKernels, SignProjectionsOfMatricesStayWithinTheFp32LaneBound) {
  Rng rng(19);
  const int rounds = 2;
  for (const bool trans : {false, true})
    for (int64_t R : {1, 7, 8, 9, 17, 255, 257, 300})
      for (int64_t K : {1, 5, 16, 17, 65, 200}) {
        SCOPED_TRACE(std::to_string(R) + "x" + std::to_string(K) + (trans ? " transposed" : ""));
        std::vector<float> m(static_cast<size_t>(R * K));
        for (float& e : m)
          e = static_cast<float>(
              std::ldexp(rng.normal(), static_cast<int>(rng.uniform() * 40) - 20));
        std::vector<double> v(static_cast<size_t>(rounds * K));
        for (double& e : v) e = rng.uniform() < 0.5 ? -1.0 : 1.0;
        for_each_level([&] {
          std::vector<double> out(static_cast<size_t>(rounds * R), NAN), out_abs(R, NAN);
          integrity::project_signs(m.data(), trans ? K : R, trans ? R : K, trans, v.data(), rounds,
                                   out.data(), out_abs.data(), true);
          const double bound = integrity::projection_relative_bound(K);
          for (int64_t i = 0; i < R; ++i) {
            const auto at = [&](int64_t j) {
              return static_cast<long double>(
                  m[static_cast<size_t>(trans ? j * R + i : i * K + j)]);
            };
            long double mass = 0;
            for (int64_t j = 0; j < K; ++j) mass += std::fabs(at(j));
            ASSERT_LE(std::fabs(out_abs[static_cast<size_t>(i)] - mass), bound * mass) << i;
            for (int r = 0; r < rounds; ++r) {
              long double exact = 0;
              for (int64_t j = 0; j < K; ++j) exact += at(j) * v[static_cast<size_t>(r * K + j)];
              ASSERT_LE(std::fabs(out[static_cast<size_t>(r * R + i)] - exact), bound * mass)
                  << "row " << i << ", round " << r;
            }
          }
        });
      }
  // Sums that round up by almost half an ulp at every addition (1, then 2^-24·(1 + 2^-10)s): a
  // chain of 199 fp32 additions would be ~199·2^-24 off, past the bound; chunks of at most
  // ceil(K/16) + 4 are not. On AVX-512 the error also shows the fp32 path ran.
  for (const bool trans : {false, true}) {
    const int64_t R = 16, K = 200;
    const float t = 0x1p-24f * (1.0f + 0x1p-10f);
    std::vector<float> m(static_cast<size_t>(R * K), t);
    for (int64_t i = 0; i < R; ++i) m[static_cast<size_t>(trans ? i : i * K)] = 1.0f;
    const std::vector<double> v(static_cast<size_t>(K), 1.0);
    for_each_level([&] {
      std::vector<double> out(static_cast<size_t>(R)), out_abs(static_cast<size_t>(R));
      integrity::project_signs(m.data(), trans ? K : R, trans ? R : K, trans, v.data(), 1,
                               out.data(), out_abs.data(), false);
      const long double exact = 1.0L + 199.0L * static_cast<long double>(t);
      const double error = static_cast<double>(std::fabs(out[0] - exact) / exact);
      EXPECT_LE(error, integrity::projection_relative_bound(K)) << trans;
      if (simd::avx512()) {
        EXPECT_GT(error, 0x1p-40) << trans << ": fp32 lanes ran";
      }
    });
  }
  for (const bool trans : {false, true}) {
    const int64_t R = 16, K = 64;
    const std::vector<float> m(static_cast<size_t>(R * K), 1e37f);
    const std::vector<double> v(static_cast<size_t>(K), 1.0);
    std::vector<double> out(static_cast<size_t>(R)), out_abs(static_cast<size_t>(R));
    integrity::project_signs(m.data(), trans ? K : R, trans ? R : K, trans, v.data(), 1, out.data(),
                             out_abs.data(), false);
    const double sum = 64 * double(1e37f), tol = integrity::projection_relative_bound(K) * sum;
    for (int64_t i = 0; i < R; ++i) {
      EXPECT_NEAR(out_abs[static_cast<size_t>(i)], sum, tol) << trans;
      EXPECT_NEAR(out[static_cast<size_t>(i)], sum, tol) << trans;
    }
  }
}

TEST(SimdKernels, EnvironmentCanOnlySelectWhatTheCpuHas) {
  const bool before = simd::use_avx512(true);
  EXPECT_EQ(simd::avx512(), simd::cpu_has_avx512());
  EXPECT_STREQ(simd::level_name(), simd::cpu_has_avx512() ? "avx512" : "avx2");
  simd::use_avx512(false);
  EXPECT_FALSE(simd::avx512());
  EXPECT_STREQ(simd::level_name(), "avx2");
  simd::use_avx512(before);
}

}  // namespace
}  // namespace tempo
