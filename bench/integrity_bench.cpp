// Throughput of the integrity checks' projections (src/master/integrity/projection.cpp) next to
// memcpy of the same bytes: the check of a patch-mode product streams the patch matrix.
//   build-NAME/bench/integrity_bench --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <cstring>
#include <vector>

#include "master/core/random.h"
#include "master/integrity/projection.h"

namespace {

std::vector<float> random_floats(int64_t n) {
  tempo::Rng rng(3);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = rng.uniform(-1.0f, 1.0f);
  return v;
}

// rows x cols row-major, t rounds, op = no transpose (the rows of X', dP', Y').
void BM_ProjectRows(benchmark::State& state) {
  const int64_t rows = state.range(0), cols = state.range(1);
  const int t = static_cast<int>(state.range(2));
  const std::vector<float> m = random_floats(rows * cols);
  const std::vector<double> x(static_cast<size_t>(t * cols), 0.5),
      x_abs(static_cast<size_t>(cols), 1.0);
  std::vector<double> out(static_cast<size_t>(t * rows)), out_abs(static_cast<size_t>(rows));
  for (auto _ : state) {
    tempo::integrity::project(m.data(), rows, cols, false, x.data(), x_abs.data(), t, out.data(),
                              out_abs.data(), true);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(state.iterations() * rows * cols * 4);
}
BENCHMARK(BM_ProjectRows)
    ->Args({32768, 576, 1})  // resnet18 layer1 patch matrix, t = 1
    ->Args({32768, 576, 2})  // t = 2
    ->Args({3136, 64, 1})    // vit-tiny Linear input
    ->Args({49, 16, 1})      // one attention head
    ->UseRealTime();

void BM_ProjectCols(benchmark::State& state) {
  const int64_t rows = state.range(0), cols = state.range(1);
  const std::vector<float> m = random_floats(rows * cols);
  // op(M) = Mᵀ: [cols, rows]; x has `rows` entries.
  const std::vector<double> x(static_cast<size_t>(rows), 0.5),
      x_abs(static_cast<size_t>(rows), 1.0);
  std::vector<double> out(static_cast<size_t>(cols)), out_abs(static_cast<size_t>(cols));
  for (auto _ : state) {
    tempo::integrity::project(m.data(), rows, cols, true, x.data(), x_abs.data(), 1, out.data(),
                              out_abs.data(), true);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(state.iterations() * rows * cols * 4);
}
BENCHMARK(BM_ProjectCols)->Args({32768, 576})->UseRealTime();

void BM_MemcpySameBytes(benchmark::State& state) {
  const int64_t n = state.range(0) * state.range(1);
  const std::vector<float> src = random_floats(n);
  std::vector<float> dst(static_cast<size_t>(n));
  for (auto _ : state) {
    std::memcpy(dst.data(), src.data(), static_cast<size_t>(n) * 4);
    benchmark::DoNotOptimize(dst.data());
  }
  state.SetBytesProcessed(state.iterations() * n * 4);
}
BENCHMARK(BM_MemcpySameBytes)->Args({32768, 576})->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
