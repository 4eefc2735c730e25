// The permute-and-scale kernel behind every encryptor and decryptor, against its definition
// dst[i][j][t] = src[rows.index[i]][cols.index[j]][t] * rows.mul[i] * cols.mul[j], on the shapes
// that take each of its paths: short rows gathered in place, long rows staged, rows prefetched
// or not, serial (small, or inside a parallel region) and threaded, planes (channel mode).
#include <gtest/gtest.h>

#include <omp.h>

#include <cmath>
#include <tuple>
#include <utility>
#include <vector>

#include "master/core/random.h"
#include "master/crypto/gather_map.h"
#include "master/crypto/key_generator.h"
#include "master/crypto/patch_kernels.h"
#include "master/integrity/error_bound.h"

namespace tempo {
namespace {

using crypto::GatherMap;
using crypto::KeyGenerator;
using crypto::ScalePower;

std::vector<float> random_values(int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = rng.uniform(-1.0f, 1.0f);
  return v;
}

std::vector<float> reference(const std::vector<float>& src, int64_t plane, const GatherMap& rows,
                             const GatherMap& cols) {
  const int64_t nr = rows.size(), nc = cols.size();
  std::vector<float> out(static_cast<size_t>(nr * nc * plane));
  for (int64_t i = 0; i < nr; ++i)
    for (int64_t j = 0; j < nc; ++j)
      for (int64_t t = 0; t < plane; ++t)
        out[static_cast<size_t>((i * nc + j) * plane + t)] =
            src[static_cast<size_t>(
                (rows.index[static_cast<size_t>(i)] * nc + cols.index[static_cast<size_t>(j)]) *
                    plane +
                t)] *
            (rows.mul[static_cast<size_t>(i)] * cols.mul[static_cast<size_t>(j)]);
  return out;
}

class PermuteScale : public ::testing::TestWithParam<std::tuple<int64_t, int64_t, int64_t>> {};

TEST_P(PermuteScale, EqualsTheGatherDefinitionExactly) {
  const auto [nr, nc, trailing] = GetParam();
  const int64_t plane = trailing;  // the OpenMP region below captures it (clang 14: no bindings)
  const KeyGenerator gen;
  const GatherMap rows = GatherMap::encrypt(gen.dim_key(nr), ScalePower::kScale);
  const GatherMap cols = GatherMap::decrypt(gen.dim_key(nc, true), ScalePower::kInverse);
  const std::vector<float> src = random_values(nr * nc * plane, 7);
  const std::vector<float> want = reference(src, plane, rows, cols);

  std::vector<float> got(want.size(), -1.0f);
  crypto::permute_scale(src.data(), got.data(), plane, rows, cols);
  EXPECT_EQ(got, want) << "outside a parallel region";

  // Inside a parallel region (as the batched encryptor calls it, one matrix per thread) the
  // kernel runs serially on the calling thread.
  std::vector<float> nested(want.size(), -1.0f);
#pragma omp parallel num_threads(2)
#pragma omp single
  crypto::permute_scale(src.data(), nested.data(), plane, rows, cols);
  EXPECT_EQ(nested, want) << "inside a parallel region";
}

// Rows: 1 (no threads), odd, tiny matrices below the threading threshold, and thousands of rows
// (threaded, prefetched ahead). Columns: below one AVX2 vector, odd, short rows gathered in place
// (<= 256), staged rows (> 256) with and without prefetching (<= 1024, > 1024). Multiples of 8
// columns up to 4096 go 8 rows at a time through a transpose (AVX2 builds): fewer than 8 rows,
// exactly one tile, tiles plus leftover rows (short, staged), threads splitting whole tiles,
// the largest tiled width, and the first width past it. Rows of up to 64 floats are permuted in
// registers on AVX-512 CPUs (one, two or four registers, the last one partly filled): widths at
// and around 16, 32, 48 and 64, and empty rows (simd_avx2.crypto_gather_test runs all of them on
// the AVX2 paths).
INSTANTIATE_TEST_SUITE_P(ShortRows, PermuteScale,
                         ::testing::Values(std::make_tuple(64, 15, 1), std::make_tuple(64, 16, 1),
                                           std::make_tuple(33, 17, 1), std::make_tuple(9, 31, 1),
                                           std::make_tuple(64, 32, 1), std::make_tuple(65, 33, 1),
                                           std::make_tuple(10, 47, 1), std::make_tuple(10, 48, 1),
                                           std::make_tuple(12, 49, 1), std::make_tuple(64, 63, 1),
                                           std::make_tuple(4096, 64, 1), std::make_tuple(5, 65, 1),
                                           std::make_tuple(5, 0, 1)));
INSTANTIATE_TEST_SUITE_P(Shapes, PermuteScale,
                         ::testing::Values(std::make_tuple(1, 1, 1), std::make_tuple(1, 300, 1),
                                           std::make_tuple(3, 7, 1), std::make_tuple(49, 16, 1),
                                           std::make_tuple(50, 64, 1), std::make_tuple(3136, 64, 1),
                                           std::make_tuple(777, 193, 1),
                                           std::make_tuple(129, 257, 1),
                                           std::make_tuple(300, 1000, 1),
                                           std::make_tuple(40, 1500, 1), std::make_tuple(7, 8, 1),
                                           std::make_tuple(8, 8, 1), std::make_tuple(1001, 4096, 1),
                                           std::make_tuple(11, 4104, 1), std::make_tuple(5, 3, 49),
                                           std::make_tuple(64, 32, 9)));

namespace {
/// Vectors for a RowProjection of rows of n floats: `rounds` rounds of signed values, and
/// positive weights for the absolute sums (an operand's projection: op(B)·v, |op(B)|·1).
struct ProjectionVectors {
  std::vector<double> vecs, weights;
  ProjectionVectors(int rounds, int64_t n) {
    vecs.resize(static_cast<size_t>(rounds * n));
    weights.resize(static_cast<size_t>(n));
    for (size_t j = 0; j < vecs.size(); ++j)
      vecs[j] = std::ldexp(j % 3 == 0 ? -1.0 : 1.0, static_cast<int>(j % 5) - 2);
    for (size_t j = 0; j < weights.size(); ++j)
      weights[j] = std::ldexp(1.0, static_cast<int>(j % 4) - 1);
  }
};

/// Every projection of the rows of `m` [rows, n] (RowProjection: `rounds` vectors, weighted
/// absolute sums) within the rounding of a double sum of n terms, in any order, of its exact value;
/// without weights (the check's sign vectors: here powers of two, exact products) within
/// integrity::projection_relative_bound, the fp32 lanes of the AVX-512 kernel.
void expect_row_projections(const std::vector<float>& m, int64_t rows, int64_t n, int rounds,
                            const double* vecs, const double* weights,
                            const std::vector<double>& out, const std::vector<double>& out_abs) {
  const long double u = weights ? std::ldexp(1.0L, -52) * static_cast<long double>(n + 2)
                                : static_cast<long double>(integrity::projection_relative_bound(n));
  for (int64_t i = 0; i < rows; ++i) {
    const float* row = m.data() + i * n;
    for (int r = 0; r < rounds; ++r) {
      long double exact = 0, mass = 0;
      for (int64_t j = 0; j < n; ++j) {
        exact += static_cast<long double>(row[j]) * vecs[r * n + j];
        mass += std::fabs(static_cast<long double>(row[j]) * vecs[r * n + j]);
      }
      ASSERT_LE(std::fabs(out[static_cast<size_t>(r * rows + i)] - exact), u * mass)
          << "row " << i << ", round " << r;
    }
    long double exact_abs = 0;
    for (int64_t j = 0; j < n; ++j)
      exact_abs += std::fabs(static_cast<long double>(row[j])) * (weights ? weights[j] : 1.0);
    ASSERT_LE(std::fabs(out_abs[static_cast<size_t>(i)] - exact_abs), u * exact_abs) << "row " << i;
  }
}
}  // namespace

// With a RowProjection (a decryption that feeds an integrity check) every source row is projected
// once, by its stored index, whichever gather path runs: short rows (in registers on AVX-512),
// tiles of 8 rows (projected together), rows gathered one at a time.
TEST(PermuteScale, ProjectsEverySourceRowWhileGathering) {
  const KeyGenerator gen;
  for (int64_t nc : {16, 40, 64, 72, 300}) {
    const int64_t nr = 37, rounds = 2;
    const GatherMap rows = GatherMap::decrypt(gen.dim_key(nr), ScalePower::kInverse);
    const GatherMap cols = GatherMap::decrypt(gen.dim_key(nc), ScalePower::kInverse);
    const std::vector<float> src = random_values(nr * nc, 11);
    std::vector<double> vecs(static_cast<size_t>(rounds * nc));
    for (size_t j = 0; j < vecs.size(); ++j) vecs[j] = j % 3 == 0 ? -1.0 : 1.0;
    std::vector<double> out(static_cast<size_t>(rounds * nr), -7.0), out_abs(nr, -7.0);
    const crypto::RowProjection projection{vecs.data(), rounds, nr, out.data(), out_abs.data()};
    std::vector<float> got(static_cast<size_t>(nr * nc));
    crypto::permute_scale(src.data(), got.data(), 1, rows, cols, &projection);
    EXPECT_EQ(got, reference(src, 1, rows, cols)) << nc << " columns";

    SCOPED_TRACE(std::to_string(nc) + " columns");
    expect_row_projections(src, nr, nc, rounds, vecs.data(), nullptr, out, out_abs);
  }
}

// Two destinations from one pass over the source (a Linear layer's output gradient under both
// backward keys) equal two separate gathers, on every path: short rows in registers, tiles of 8
// rows sharing one transpose, rows staged or gathered in place, serial and threaded.
TEST(PermuteScalePair, EqualsTwoSeparateGathersExactly) {
  const KeyGenerator gen;
  const std::vector<std::pair<int64_t, int64_t>> shapes = {
      {1, 1},  {4, 0},     {3, 7},     {64, 16},   {65, 33},     {4096, 64},
      {9, 72}, {777, 193}, {129, 257}, {40, 1500}, {1001, 4096}, {11, 4104}};
  for (const auto& [nr, nc] : shapes) {
    const GatherMap rows1 = GatherMap::encrypt(gen.dim_key(nr), ScalePower::kScale);
    const GatherMap cols1 = GatherMap::encrypt(gen.dim_key(nc), ScalePower::kInverse);
    const GatherMap rows2 = GatherMap::encrypt(gen.dim_key(nr), ScalePower::kInverse);
    const GatherMap cols2 = GatherMap::encrypt(gen.dim_key(nc, true), ScalePower::kScale);
    const std::vector<float> src = random_values(nr * nc, 5);
    const std::vector<float> want1 = reference(src, 1, rows1, cols1);
    const std::vector<float> want2 = reference(src, 1, rows2, cols2);
    std::vector<float> got1(want1.size(), -1.0f), got2(want2.size(), -1.0f);
    crypto::permute_scale_pair(src.data(), rows1, cols1, got1.data(), rows2, cols2, got2.data());
    EXPECT_EQ(got1, want1) << nr << "x" << nc;
    EXPECT_EQ(got2, want2) << nr << "x" << nc;
  }
}

// Blinding an operand for an integrity check (integrity::PreparedCheck): every destination row is
// projected once written, by its own index, on every path (short rows in registers, tiles of 8,
// staged and in-place rows, serial and threaded), with and without weighted absolute sums.
TEST(PermuteScale, ProjectsEveryDestinationRowOnceWritten) {
  const KeyGenerator gen;
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{1, 1},     {37, 16},   {37, 40},
                                                           {65, 64},   {9, 72},    {4096, 64},
                                                           {777, 193}, {40, 1500}, {11, 4104}};
  for (const auto& [nr, nc] : shapes)
    for (int rounds : {1, 3})
      for (bool weighted : {false, true}) {
        const GatherMap rows = GatherMap::encrypt(gen.dim_key(nr), ScalePower::kScale);
        const GatherMap cols = GatherMap::encrypt(gen.dim_key(nc, true), ScalePower::kInverse);
        const std::vector<float> src = random_values(nr * nc, 13);
        const ProjectionVectors v(rounds, nc);
        const double* weights = weighted ? v.weights.data() : nullptr;
        std::vector<double> out(static_cast<size_t>(rounds * nr), -7.0), out_abs(nr, -7.0);
        const crypto::RowProjection projection{v.vecs.data(), rounds,         nr,
                                               out.data(),    out_abs.data(), weights};
        std::vector<float> got(static_cast<size_t>(nr * nc));
        crypto::permute_scale(src.data(), got.data(), 1, rows, cols, nullptr, &projection);
        const std::vector<float> want = reference(src, 1, rows, cols);
        ASSERT_EQ(got, want) << nr << "x" << nc;
        SCOPED_TRACE(std::to_string(nr) + "x" + std::to_string(nc) + ", rounds " +
                     std::to_string(rounds) + (weighted ? ", weighted" : ""));
        expect_row_projections(want, nr, nc, rounds, v.vecs.data(), weights, out, out_abs);
      }
}

// The same for both destinations of one pass (a Linear layer's output gradient, whose two
// blinded copies feed the backward-data and backward-weights checks).
TEST(PermuteScalePair, ProjectsTheRowsOfEachDestinationOnceWritten) {
  const KeyGenerator gen;
  const std::vector<std::pair<int64_t, int64_t>> shapes = {
      {1, 1}, {3, 7}, {64, 16}, {65, 33}, {4096, 64}, {9, 72}, {777, 193}, {40, 1500}, {11, 4104}};
  for (const auto& [nr, nc] : shapes)
    for (int rounds : {1, 2}) {
      const GatherMap rows1 = GatherMap::encrypt(gen.dim_key(nr), ScalePower::kScale);
      const GatherMap cols1 = GatherMap::encrypt(gen.dim_key(nc), ScalePower::kInverse);
      const GatherMap rows2 = GatherMap::encrypt(gen.dim_key(nr), ScalePower::kInverse);
      const GatherMap cols2 = GatherMap::encrypt(gen.dim_key(nc, true), ScalePower::kScale);
      const std::vector<float> src = random_values(nr * nc, 17);
      const ProjectionVectors v1(rounds, nc), v2(rounds, nc);
      std::vector<double> out1(static_cast<size_t>(rounds * nr), -7.0), abs1(nr, -7.0);
      std::vector<double> out2(static_cast<size_t>(rounds * nr), -7.0), abs2(nr, -7.0);
      const crypto::RowProjection p1{v1.vecs.data(), rounds,      nr,
                                     out1.data(),    abs1.data(), v1.weights.data()};
      const crypto::RowProjection p2{v2.vecs.data(), rounds, nr, out2.data(), abs2.data()};
      std::vector<float> got1(static_cast<size_t>(nr * nc)), got2(got1.size());
      crypto::permute_scale_pair(src.data(), rows1, cols1, got1.data(), rows2, cols2, got2.data(),
                                 &p1, &p2);
      const std::vector<float> want1 = reference(src, 1, rows1, cols1);
      const std::vector<float> want2 = reference(src, 1, rows2, cols2);
      ASSERT_EQ(got1, want1) << nr << "x" << nc;
      ASSERT_EQ(got2, want2) << nr << "x" << nc;
      SCOPED_TRACE(std::to_string(nr) + "x" + std::to_string(nc) + ", rounds " +
                   std::to_string(rounds));
      expect_row_projections(want1, nr, nc, rounds, v1.vecs.data(), v1.weights.data(), out1, abs1);
      expect_row_projections(want2, nr, nc, rounds, v2.vecs.data(), nullptr, out2, abs2);
    }
}

// Patch mode's output gradient blinded for the backward-data check (NCHW -> permuted rows, the
// scatter of PatchConvEncryptor::encrypt_grad_for_dx): every blinded row is projected once
// written, by its stored index, on both paths (groups of 8 positions when the channels are a
// multiple of 8, the staged tile for the rest), serial and threaded; the rows are bit-identical to
// an unprojected scatter.
TEST(ScatterRowsFromNchw, ProjectsEveryBlindedRowOnceWritten) {
  const KeyGenerator gen;
  const std::vector<std::tuple<int64_t, int64_t, int64_t>> shapes = {
      {1, 1, 1}, {2, 8, 16}, {2, 16, 49}, {3, 12, 20}, {4, 64, 64}, {2, 24, 196}, {1, 512, 16}};
  for (const auto& [batch, channels, plane] : shapes)
    for (int rounds : {1, 2}) {
      const int64_t positions = batch * plane;
      const GatherMap rows = GatherMap::decrypt(gen.dim_key(positions), ScalePower::kScale);
      const GatherMap cols = GatherMap::encrypt(gen.dim_key(channels, true), ScalePower::kInverse);
      const std::vector<float> src = random_values(batch * channels * plane, 19);
      const ProjectionVectors v(rounds, channels);
      std::vector<double> out(static_cast<size_t>(rounds * positions), -7.0);
      std::vector<double> out_abs(static_cast<size_t>(positions), -7.0);
      const crypto::RowProjection projection{v.vecs.data(), rounds,         positions,
                                             out.data(),    out_abs.data(), v.weights.data()};
      std::vector<float> got(static_cast<size_t>(positions * channels));
      std::vector<float> want(got.size());
      crypto::patch::scatter_rows_from_nchw(src.data(), batch, channels, plane, rows, cols,
                                            got.data(), &projection);
      crypto::patch::scatter_rows_from_nchw(src.data(), batch, channels, plane, rows, cols,
                                            want.data());
      ASSERT_EQ(got, want);
      SCOPED_TRACE(std::to_string(batch) + "x" + std::to_string(channels) + "x" +
                   std::to_string(plane) + ", rounds " + std::to_string(rounds));
      expect_row_projections(want, positions, channels, rounds, v.vecs.data(), v.weights.data(),
                             out, out_abs);
    }
}

TEST(GatherMapReuse, SetEncryptAndSetDecryptEqualTheFreshMapsAcrossSizes) {
  const KeyGenerator gen;
  GatherMap reused;
  for (int64_t n : {100, 3, 0, 17}) {
    const auto key = gen.dim_key(n, true);
    for (ScalePower p : {ScalePower::kOne, ScalePower::kScale, ScalePower::kInverse}) {
      reused.set_encrypt(key, p);
      const GatherMap fresh = GatherMap::encrypt(key, p);
      EXPECT_EQ(reused.index, fresh.index);
      EXPECT_EQ(reused.mul, fresh.mul);
      reused.set_decrypt(key, p);
      const GatherMap fresh_dec = GatherMap::decrypt(key, p);
      EXPECT_EQ(reused.index, fresh_dec.index);
      EXPECT_EQ(reused.mul, fresh_dec.mul);
    }
  }
}

}  // namespace
}  // namespace tempo
