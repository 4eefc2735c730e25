// Plain convolution backends (im2col + OpenBLAS vs oneDNN) on ResNet-18 CIFAR shapes, batch 32:
// forward, backward-data, backward-weights and a whole training step (forward + both backwards).
// Results and the backend rule: docs/notes/conv-backend.md.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string>

#include "master/core/blas.h"
#include "master/core/random.h"
#include "master/nn/plain_conv_backend.h"

namespace tempo::nn {
namespace {

struct ConvShape {
  const char* name;
  int64_t c, o, hw, k, stride, pad;
};

constexpr int64_t kBatch = 32;

const ConvShape kShapes[] = {
    {"stem_3_64_32", 3, 64, 32, 3, 1, 1},
    {"l1_64_64_32", 64, 64, 32, 3, 1, 1},
    {"l2down_64_128_32s2", 64, 128, 32, 3, 2, 1},
    {"l2sc_64_128_32s2_1x1", 64, 128, 32, 1, 2, 0},
    {"l2_128_128_16", 128, 128, 16, 3, 1, 1},
    {"l3down_128_256_16s2", 128, 256, 16, 3, 2, 1},
    {"l3sc_128_256_16s2_1x1", 128, 256, 16, 1, 2, 0},
    {"l3_256_256_8", 256, 256, 8, 3, 1, 1},
    {"l4down_256_512_8s2", 256, 512, 8, 3, 2, 1},
    {"l4sc_256_512_8s2_1x1", 256, 512, 8, 1, 2, 0},
    {"l4_512_512_4", 512, 512, 4, 3, 1, 1},
};

enum class Pass { kForward, kBackwardData, kBackwardWeights, kStep };

Tensor filled_random(const Shape& s, Rng& rng) {
  Tensor t(s);
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = rng.uniform(-1.0f, 1.0f);
  return t;
}

void run(benchmark::State& state, const ConvShape& cs, ConvBackend backend, Pass pass) {
  Rng rng(1);
  const ConvGeometry g{cs.stride, cs.stride, cs.pad, cs.pad};
  Tensor x = filled_random({kBatch, cs.c, cs.hw, cs.hw}, rng);
  Tensor w = filled_random({cs.o, cs.c, cs.k, cs.k}, rng);
  const int64_t out = g.out_h(cs.hw, cs.k);
  Tensor dy = filled_random({kBatch, cs.o, out, out}, rng);
  std::unique_ptr<SavedProduct> saved;
  plain_conv2d(backend, x, w, g, nullptr);  // warm-up: primitive creation, first-touch pages
  for (auto _ : state) {
    Tensor dx, dw;
    switch (pass) {
      case Pass::kForward:
        benchmark::DoNotOptimize(plain_conv2d(backend, x, w, g, nullptr).data());
        break;
      case Pass::kBackwardData:
      case Pass::kBackwardWeights:
        state.PauseTiming();
        plain_conv2d(backend, x, w, g, &saved);
        state.ResumeTiming();
        plain_conv2d_backward(dy, &saved, pass == Pass::kBackwardData ? &dx : nullptr,
                              pass == Pass::kBackwardWeights ? &dw : nullptr);
        break;
      case Pass::kStep:
        benchmark::DoNotOptimize(plain_conv2d(backend, x, w, g, &saved).data());
        plain_conv2d_backward(dy, &saved, &dx, &dw);
        break;
    }
    benchmark::ClobberMemory();
  }
  const double flops =
      2.0 * kBatch * cs.o * out * out * cs.c * cs.k * cs.k * (pass == Pass::kStep ? 3.0 : 1.0);
  state.counters["GFLOPS"] =
      benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void register_all() {
  const std::pair<Pass, const char*> passes[] = {{Pass::kForward, "fwd"},
                                                 {Pass::kBackwardData, "bwd_data"},
                                                 {Pass::kBackwardWeights, "bwd_weights"},
                                                 {Pass::kStep, "step"}};
  for (const ConvShape& cs : kShapes)
    for (auto [pass, pass_name] : passes)
      for (ConvBackend b : {ConvBackend::kIm2col, ConvBackend::kOnednn}) {
        const std::string name =
            std::string("conv/") + cs.name + "/" + pass_name + "/" + conv_backend_name(b);
        benchmark::RegisterBenchmark(
            name.c_str(), [&cs, b, pass = pass](benchmark::State& st) { run(st, cs, b, pass); })
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
      }
}

}  // namespace
}  // namespace tempo::nn

int main(int argc, char** argv) {
  // Two threads by default: the pure-TEE baseline's budget (TEMPO_THREADS overrides).
  const char* env = std::getenv("TEMPO_THREADS");
  tempo::blas::set_num_threads(env ? std::atoi(env) : 2);
  benchmark::Initialize(&argc, argv);
  tempo::nn::register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
