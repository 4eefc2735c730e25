// The GEMM library behind every CPU product (master and CPU worker): oneDNN's sgemm, next to
// OpenBLAS's cblas_sgemm on the same shapes when OpenBLAS is installed (Debian
// libopenblas-openmp-dev; not a dependency of Tempo, only of this comparison).
//   build-NAME/bench/gemm_bench --benchmark_counters_tabular=true
// Shapes: resnet18 patch-mode products at batch 32 (forward Y' = X'·W'ᵀ, backward-data
// dX' = dY'·W', backward-weights dW' = dY'ᵀ·X') and vit-tiny's Linear products at batch 64.
#include <benchmark/benchmark.h>
#include <dnnl.h>

#include <vector>

#ifdef TEMPO_WITH_OPENBLAS
#include <cblas.h>
#endif

namespace {

struct Shape {
  int64_t m, n, k;
  bool ta, tb;
};

// range(0) indexes this table.
const Shape kShapes[] = {
    {32768, 64, 576, false, true},   // layer1 3x3 conv forward: [N·32·32, 64·9]·[64, 64·9]ᵀ
    {8192, 128, 1152, false, true},  // layer2 forward
    {2048, 256, 2304, false, true},  // layer3 forward
    {512, 512, 4608, false, true},   // layer4 forward
    {32768, 576, 64, false, false},  // layer1 backward-data
    {64, 576, 32768, true, false},   // layer1 backward-weights
    {3136, 256, 64, false, false},   // vit-tiny fc1
};

template <bool kOneDnn>
void BM_Sgemm(benchmark::State& state) {
  const Shape s = kShapes[state.range(0)];
  std::vector<float> a(static_cast<size_t>(s.m * s.k), 0.5f),
      b(static_cast<size_t>(s.k * s.n), 0.25f), c(static_cast<size_t>(s.m * s.n));
  const int64_t lda = s.ta ? s.m : s.k, ldb = s.tb ? s.k : s.n;
  for (auto _ : state) {
    if constexpr (kOneDnn) {
      dnnl_sgemm(s.ta ? 'T' : 'N', s.tb ? 'T' : 'N', s.m, s.n, s.k, 1.0f, a.data(), lda, b.data(),
                 ldb, 0.0f, c.data(), s.n);
    } else {
#ifdef TEMPO_WITH_OPENBLAS
      cblas_sgemm(CblasRowMajor, s.ta ? CblasTrans : CblasNoTrans, s.tb ? CblasTrans : CblasNoTrans,
                  static_cast<blasint>(s.m), static_cast<blasint>(s.n), static_cast<blasint>(s.k),
                  1.0f, a.data(), static_cast<blasint>(lda), b.data(), static_cast<blasint>(ldb),
                  0.0f, c.data(), static_cast<blasint>(s.n));
#endif
    }
    benchmark::DoNotOptimize(c.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * static_cast<double>(s.m * s.n * s.k),
                                                 benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(std::to_string(s.m) + "x" + std::to_string(s.n) + "x" + std::to_string(s.k));
}

BENCHMARK(BM_Sgemm<true>)->Name("oneDNN_sgemm")->DenseRange(0, 6)->UseRealTime();
#ifdef TEMPO_WITH_OPENBLAS
BENCHMARK(BM_Sgemm<false>)->Name("OpenBLAS_sgemm")->DenseRange(0, 6)->UseRealTime();
#endif

}  // namespace

BENCHMARK_MAIN();
