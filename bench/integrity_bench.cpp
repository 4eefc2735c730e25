// Throughput of the integrity checks' projections (src/master/integrity/projection.cpp) next to
// memcpy of the same bytes: the check of a patch-mode product streams the patch matrix, unless
// its projection is computed from the plaintext input (BM_ProjectPatchMatrix compares the two).
//   build-NAME/bench/integrity_bench --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "master/core/random.h"
#include "master/crypto/gather_map.h"
#include "master/crypto/key_generator.h"
#include "master/crypto/patch_conv_obfuscator.h"
#include "master/crypto/row_projection.h"
#include "master/integrity/conv_check.h"
#include "master/integrity/product_check.h"
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
    ->Args({64, 16, 1})      // one vit-tiny attention head at 32x32 inputs
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

// The forward check's projection of a patch-mode X' (16 images, 3x3 same conv, C channels on an
// HxW image, t = 1): arg 2 = 0 streams X' (integrity::project), 1 computes it from the plaintext
// input (PatchConvForward::project_input; docs/integrity.md section 1). Shapes of resnet18's
// layers 1-4 at batch 16. Bytes: those of X', whichever route.
// Mode /0 streams X', /1 projects it from the input in double (a check's A side), /2 from the
// input on ±1 vectors as a check's B side (fp32 lanes with AVX-512, ProjectionSums::kSignLanes).
void BM_ProjectPatchMatrix(benchmark::State& state) {
  const int64_t c = state.range(0), hw = state.range(1);
  const bool from_input = state.range(2) != 0;
  const auto sums = state.range(2) == 2 ? tempo::crypto::patch::ProjectionSums::kSignLanes
                                        : tempo::crypto::patch::ProjectionSums::kDouble;
  tempo::Tensor x({16, c, hw, hw}), w({c, c, 3, 3});
  const std::vector<float> xs = random_floats(x.numel()), ws = random_floats(w.numel());
  std::copy(xs.begin(), xs.end(), x.data());
  std::copy(ws.begin(), ws.end(), w.data());
  tempo::nn::ConvGeometry g;
  g.pad_h = g.pad_w = 1;
  const tempo::crypto::PatchConvForward fw = tempo::crypto::PatchConvObfuscator().encrypt(x, w, g);
  const int64_t m = fw.x().dim(0), k = fw.x().dim(1);
  std::vector<double> v(static_cast<size_t>(k), 0.5);
  const std::vector<double> v_abs(static_cast<size_t>(k), 1.0);
  if (state.range(2) == 2)
    for (size_t j = 0; j < v.size(); ++j) v[j] = j % 3 == 0 ? -1.0 : 1.0;
  std::vector<double> out(static_cast<size_t>(m)), out_abs(static_cast<size_t>(m));
  for (auto _ : state) {
    if (from_input) {
      if (!fw.project_input(x, v.data(), v_abs.data(), 1, out.data(), out_abs.data(), sums))
        state.SkipWithError("project_input declined this shape");
    } else {
      tempo::integrity::project(fw.x().data(), m, k, false, v.data(), v_abs.data(), 1, out.data(),
                                out_abs.data(), true);
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(state.iterations() * m * k * 4);
}
BENCHMARK(BM_ProjectPatchMatrix)
    ->ArgsProduct({{64}, {32}, {0, 1, 2}})
    ->ArgsProduct({{128}, {16}, {0, 1, 2}})
    ->ArgsProduct({{256}, {8}, {0, 1, 2}})
    ->Args({512, 4, 0})
    ->UseRealTime();

// The three checks of one channel-mode convolution (forward, backward-data, backward-weights;
// t = 1): projections of X, W, dY and the results over batch and channels, and the small
// convolutions in the TEE. A 3x3 same conv, batch 128, C = O channels on an HxW image: resnet50's
// layer-1 and layer-3 shapes at 32x32 inputs. Bytes: X, W, Y, dY, dX and dW once each.
void BM_ChannelConvChecks(benchmark::State& state) {
  const int64_t c = state.range(0), hw = state.range(1), n = 128;
  auto blinded = [](const tempo::Shape& s) {
    tempo::BlindedTensor t = tempo::BlindedTensor::allocate(s);
    const std::vector<float> v = random_floats(s.numel());
    std::copy(v.begin(), v.end(), t.mutable_data());
    return t;
  };
  const tempo::BlindedTensor x = blinded({n, c, hw, hw}), w = blinded({c, c, 3, 3});
  const tempo::BlindedTensor y = blinded({n, c, hw, hw}), dy = blinded({n, c, hw, hw});
  const tempo::BlindedTensor dx = blinded({n, c, hw, hw}), dw = blinded({c, c, 3, 3});
  const tempo::protocol::ConvParams p{1, 1, 1, 1};
  for (auto _ : state) {
    // Random data fails the checks; the work is the same either way.
    benchmark::DoNotOptimize(tempo::integrity::check_conv_forward(x, w, p, y, 1).worst_ratio);
    benchmark::DoNotOptimize(
        tempo::integrity::check_conv_backward_data(dy, w, p, dx, 1).worst_ratio);
    benchmark::DoNotOptimize(
        tempo::integrity::check_conv_backward_weights(x, dy, p, dw, 1).worst_ratio);
  }
  state.SetBytesProcessed(state.iterations() * (4 * x.numel() + 2 * w.numel()) * 4);
}
BENCHMARK(BM_ChannelConvChecks)->Args({64, 32})->Args({256, 8})->UseRealTime();

// Freivalds' check of a batched product, t = 1: preparing it (the operands' projections, one
// per batch entry) and verifying a result. vit-tiny's attention at 32x32 inputs and batch 64
// (256 entries of [64, 16] · [16, 64], Q·Kᵀ, and [64, 64] · [64, 16], A·V), vit-s4's Q·Kᵀ
// (batch 128: 768 entries of 64x64). Arguments: entries, m, k, n, trans_b.
void BM_BatchedProductCheck(benchmark::State& state) {
  const int64_t batch = state.range(0), m = state.range(1), k = state.range(2), n = state.range(3);
  const bool trans_b = state.range(4) != 0;
  auto blinded = [](const tempo::Shape& s) {
    tempo::BlindedTensor t = tempo::BlindedTensor::allocate(s);
    const std::vector<float> v = random_floats(s.numel());
    std::copy(v.begin(), v.end(), t.mutable_data());
    return t;
  };
  const tempo::BlindedTensor a = blinded({batch, m, k});
  const tempo::BlindedTensor b =
      blinded(trans_b ? tempo::Shape{batch, n, k} : tempo::Shape{batch, k, n});
  const tempo::BlindedTensor c = blinded({batch, m, n});
  for (auto _ : state) {
    const tempo::integrity::ProductCheck check(a, b, false, trans_b, 1);
    benchmark::DoNotOptimize(check.verify(c).worst_ratio);
  }
  state.SetItemsProcessed(state.iterations() * batch);
}
BENCHMARK(BM_BatchedProductCheck)
    ->Args({256, 64, 16, 64, 1})
    ->Args({256, 64, 64, 16, 0})
    ->Args({768, 64, 64, 64, 1})
    ->UseRealTime();

}  // namespace

// A Linear layer's operand X [m, k] blinded for a checked product (rows permuted and scaled),
// and its check's projection X'·x, |X'|·x_abs: /0 blinds, then projects X' in a pass of its own
// (what ProductCheck does alone); /1 projects each row of X' as the blinding writes it
// (integrity::PreparedCheck, crypto::RowProjection). One thread, operands out of cache: a fresh
// source buffer per iteration out of several.
void BM_BlindLinearOperandForItsCheck(benchmark::State& state) {
  const int64_t m = state.range(0), k = state.range(1);
  const bool fused = state.range(2) != 0;
  const tempo::crypto::KeyGenerator gen;
  const auto rows =
      tempo::crypto::GatherMap::encrypt(gen.dim_key(m), tempo::crypto::ScalePower::kScale);
  const auto cols =
      tempo::crypto::GatherMap::encrypt(gen.dim_key(k, true), tempo::crypto::ScalePower::kScale);
  // Enough copies to leave the caches (>= 96 MiB in all).
  const int64_t copies = std::max<int64_t>(2, (int64_t{96} << 20) / (m * k * 4));
  std::vector<std::vector<float>> src(static_cast<size_t>(copies), random_floats(m * k));
  std::vector<std::vector<float>> dst(static_cast<size_t>(copies),
                                      std::vector<float>(static_cast<size_t>(m * k)));
  const std::vector<double> x(static_cast<size_t>(k), 0.5), x_abs(static_cast<size_t>(k), 1.0);
  std::vector<double> out(static_cast<size_t>(m)), out_abs(static_cast<size_t>(m));
  const tempo::crypto::RowProjection projection{x.data(),       1,           m, out.data(),
                                                out_abs.data(), x_abs.data()};
  int64_t c = 0;
  for (auto _ : state) {
    float* d = dst[static_cast<size_t>(c)].data();
    const float* s = src[static_cast<size_t>(c)].data();
    c = (c + 1) % copies;
    if (fused) {
      tempo::crypto::permute_scale(s, d, 1, rows, cols, nullptr, &projection);
    } else {
      tempo::crypto::permute_scale(s, d, 1, rows, cols);
      tempo::integrity::project(d, m, k, false, x.data(), x_abs.data(), 1, out.data(),
                                out_abs.data(), false);
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(state.iterations() * m * k * 4);
}
BENCHMARK(BM_BlindLinearOperandForItsCheck)
    ->Args({4096, 64, 0})  // vit-tiny at batch 64: a block's input
    ->Args({4096, 64, 1})
    ->Args({4096, 256, 0})  // its MLP's hidden layer
    ->Args({4096, 256, 1})
    ->Args({8320, 384, 0})  // vit-s4 at batch 128
    ->Args({8320, 384, 1})
    ->Args({8320, 1536, 0})
    ->Args({8320, 1536, 1})
    ->UseRealTime();

// The row projections that blinding and unblinding kernels take for the checks
// (crypto::RowProjection), on a matrix in cache: /0 one row at a time (project), /1 tiles of 8
// rows (project8, what the kernels call where they handle rows 8 at a time) on a ±1 vector (a
// result's projection: fp32 lanes on AVX-512), /2 tiles on weights (an operand's,
// integrity::PreparedCheck: double lanes).
void BM_RowProjectionKernel(benchmark::State& state) {
  const int64_t m = state.range(0), n = state.range(1);
  const int64_t mode = state.range(2);
  const std::vector<float> a = random_floats(m * n);
  const std::vector<double> v(static_cast<size_t>(n), -1.0), w(static_cast<size_t>(n), 1.5);
  std::vector<double> out(static_cast<size_t>(m)), out_abs(static_cast<size_t>(m));
  const tempo::crypto::RowProjection projection{
      v.data(), 1, m, out.data(), out_abs.data(), mode == 2 ? w.data() : nullptr};
  for (auto _ : state) {
    int64_t i = 0;
    if (mode > 0)
      for (; i + 8 <= m; i += 8) {
        const float* rows[8];
        int64_t index[8];
        for (int64_t k = 0; k < 8; ++k) {
          rows[k] = a.data() + (i + k) * n;
          index[k] = i + k;
        }
        projection.project8(rows, n, index);
      }
    for (; i < m; ++i) projection.project(a.data() + i * n, n, i);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(state.iterations() * m * n * 4);
}
BENCHMARK(BM_RowProjectionKernel)
    ->ArgsProduct({{1024}, {16, 64}, {0, 1, 2}})  // attention heads' rows, vit-tiny's Linear
    ->ArgsProduct({{256}, {384}, {0, 1, 2}})      // vit-s4's
    ->UseRealTime();

BENCHMARK_MAIN();
