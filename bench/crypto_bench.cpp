// Throughput of MM-obfuscation encryption/decryption next to memcpy of the same bytes.
//   build-NAME/bench/crypto_bench --benchmark_counters_tabular=true
// "bytes" of every benchmark = bytes of the tensor it writes, so GB/s compare directly with the
// memcpy rows of the same size. The API rows include allocating the result (as the engine pays);
// the kernel rows write into a preallocated buffer (as memcpy does).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "master/core/random.h"
#include "master/crypto/crypto.h"
#include "master/crypto/gather_map.h"
#include "master/crypto/patch_kernels.h"

namespace tempo {
namespace {

Tensor random_tensor(const Shape& s) {
  Rng rng(1);
  Tensor t(s);
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = rng.uniform(-1.0f, 1.0f);
  return t;
}

BlindedTensor random_blinded(const Shape& s) {
  const Tensor t = random_tensor(s);
  BlindedTensor b = BlindedTensor::allocate(s);
  std::memcpy(b.mutable_data(), t.data(), static_cast<size_t>(b.bytes()));
  return b;
}

void set_bytes(benchmark::State& state, int64_t bytes) {
  state.SetBytesProcessed(state.iterations() * bytes);
}

// ---- memcpy baselines: bytes = size of the copy
void BM_Memcpy(benchmark::State& state) {
  const int64_t n = state.range(0) * state.range(1);
  const Tensor src = random_tensor({n});
  Tensor dst = Tensor::zeros({n});
  for (auto _ : state) {
    std::memcpy(dst.data(), src.data(), static_cast<size_t>(n) * 4);
    benchmark::DoNotOptimize(dst.data());
  }
  set_bytes(state, n * 4);
}
BENCHMARK(BM_Memcpy)
    ->Args({4096, 4096})
    ->Args({32768, 576})
    ->Args({32 * 64, 32 * 32})
    ->Args({32768, 64})
    ->UseRealTime();

// The same copy into a freshly allocated tensor, as every API call that returns a new tensor does:
// first-touch page faults of the new buffer included.
void BM_MemcpyFreshAlloc(benchmark::State& state) {
  const int64_t n = state.range(0) * state.range(1);
  const Tensor src = random_tensor({n});
  for (auto _ : state) {
    Tensor dst({n});
    std::memcpy(dst.data(), src.data(), static_cast<size_t>(n) * 4);
    benchmark::DoNotOptimize(dst.data());
  }
  set_bytes(state, n * 4);
}
BENCHMARK(BM_MemcpyFreshAlloc)
    ->Args({4096, 4096})
    ->Args({32768, 576})
    ->Args({32 * 64, 32 * 32})
    ->UseRealTime();

// ---- matmul (section 2): a 4096x4096 operand
void BM_MatmulEncryptA(benchmark::State& state) {
  const int64_t m = state.range(0), k = state.range(1);
  const Tensor a = random_tensor({m, k});
  const crypto::MatmulKey key = crypto::KeyGenerator().matmul_key(m, k, 16);
  const crypto::MatmulEncryptor enc(key);
  for (auto _ : state) benchmark::DoNotOptimize(enc.encrypt_a(a).data());
  set_bytes(state, m * k * 4);
}
BENCHMARK(BM_MatmulEncryptA)->Args({4096, 4096})->UseRealTime();

void BM_MatmulDecrypt(benchmark::State& state) {
  const int64_t m = state.range(0), n = state.range(1);
  const BlindedTensor c = random_blinded({m, n});
  const crypto::MatmulKey key = crypto::KeyGenerator().matmul_key(m, 16, n);
  const crypto::MatmulDecryptor dec(key);
  for (auto _ : state) benchmark::DoNotOptimize(dec.decrypt(c).data());
  set_bytes(state, m * n * 4);
}
BENCHMARK(BM_MatmulDecrypt)->Args({4096, 4096})->UseRealTime();

// The kernel alone, into preallocated buffers. `cold`: source and destination out of cache, as
// in a training step where each product's operands were written by another layer long before:
// they cycle through copies totalling 256 MiB, so every row gathered comes from DRAM.
void permute_scale_kernel(benchmark::State& state, bool cold) {
  const int64_t m = state.range(0), k = state.range(1);
  const int64_t copies = cold ? std::max<int64_t>(2, (int64_t{256} << 20) / (m * k * 4)) : 1;
  std::vector<Tensor> src, dst;
  for (int64_t c = 0; c < copies; ++c) {
    src.push_back(random_tensor({m, k}));
    dst.push_back(Tensor::zeros({m, k}));
  }
  const crypto::KeyGenerator gen;
  const auto rows = crypto::GatherMap::encrypt(gen.dim_key(m), crypto::ScalePower::kScale);
  const auto cols = crypto::GatherMap::encrypt(gen.dim_key(k), crypto::ScalePower::kScale);
  size_t c = 0;
  for (auto _ : state) {
    crypto::permute_scale(src[c].data(), dst[c].data(), 1, rows, cols);
    benchmark::DoNotOptimize(dst[c].data());
    c = (c + 1) % src.size();
  }
  set_bytes(state, m * k * 4);
}

void BM_PermuteScaleKernel(benchmark::State& state) { permute_scale_kernel(state, false); }
BENCHMARK(BM_PermuteScaleKernel)
    ->Args({4096, 4096})
    ->Args({3200, 64})
    ->Args({3200, 192})
    ->Args({3200, 768})
    ->Args({50, 64})
    ->UseRealTime();

void BM_PermuteScaleKernelCold(benchmark::State& state) { permute_scale_kernel(state, true); }
BENCHMARK(BM_PermuteScaleKernelCold)
    ->Args({4096, 4096})
    ->Args({3200, 64})
    ->Args({3200, 192})
    ->Args({3200, 768})
    ->UseRealTime();

// ---- batched products (attention): vit-tiny's Q·Kᵀ, 64 images x 4 heads of [49, 16]
void BM_BatchedEncryptA(benchmark::State& state) {
  const int64_t batch = state.range(0), m = state.range(1), k = state.range(2);
  const Tensor a = random_tensor({batch, m, k});
  const auto key = crypto::KeyGenerator().batched_matmul_key(batch, m, k, m);
  const crypto::BatchedMatmulEncryptor enc(key);
  for (auto _ : state) benchmark::DoNotOptimize(enc.encrypt_a(a, false).data());
  set_bytes(state, batch * m * k * 4);
}
// vit-tiny (batch 64, 4 heads of 16 over 64 tokens) and vit-s4 (6 heads of 64) at 32x32 inputs.
BENCHMARK(BM_BatchedEncryptA)
    ->Args({256, 49, 16})
    ->Args({256, 64, 16})
    ->Args({384, 64, 64})
    ->UseRealTime();

void BM_BatchedDecrypt(benchmark::State& state) {
  const int64_t batch = state.range(0), m = state.range(1), n = state.range(2);
  const BlindedTensor c = random_blinded({batch, m, n});
  const auto key = crypto::KeyGenerator().batched_matmul_key(batch, m, 16, n);
  const crypto::BatchedMatmulDecryptor dec(key);
  for (auto _ : state) benchmark::DoNotOptimize(dec.decrypt(c).data());
  set_bytes(state, batch * m * n * 4);
}
BENCHMARK(BM_BatchedDecrypt)
    ->Args({256, 49, 49})
    ->Args({256, 49, 16})
    ->Args({256, 64, 64})
    ->Args({256, 64, 16})
    ->UseRealTime();

void BM_KeyGenerationBatched(benchmark::State& state) {
  const crypto::KeyGenerator gen;
  for (auto _ : state) benchmark::DoNotOptimize(gen.batched_matmul_key(256, 49, 16, 49));
}
BENCHMARK(BM_KeyGenerationBatched)->UseRealTime();

// ---- patch mode: X [32,64,32,32], W [64,64,3,3], pad 1 -> patches [32768, 576], Y' [32768, 64]
crypto::ConvShape patch_shape() {
  return crypto::ConvShape::of({32, 64, 32, 32}, {64, 64, 3, 3}, {1, 1, 1, 1});
}

void BM_PatchEncryptInput(benchmark::State& state) {
  const auto s = patch_shape();
  const Tensor x = random_tensor(s.input_shape());
  const auto key = crypto::KeyGenerator().patch_conv_key(s.positions(), s.patch(), s.out_channels);
  const crypto::PatchConvEncryptor enc(key, s);
  for (auto _ : state) benchmark::DoNotOptimize(enc.encrypt_input(x).data());
  set_bytes(state, s.positions() * s.patch() * 4);
}
BENCHMARK(BM_PatchEncryptInput)->UseRealTime();

void BM_PatchIm2colBlindKernel(benchmark::State& state) {
  const auto s = patch_shape();
  const Tensor x = random_tensor(s.input_shape());
  Tensor out = Tensor::zeros({s.positions(), s.patch()});
  const crypto::KeyGenerator gen;
  const auto rows =
      crypto::GatherMap::decrypt(gen.dim_key(s.positions()), crypto::ScalePower::kScale);
  const auto cols = crypto::GatherMap::encrypt(gen.dim_key(s.patch()), crypto::ScalePower::kScale);
  for (auto _ : state) {
    crypto::patch::im2col_blind(x.data(), s, rows, cols, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  set_bytes(state, s.positions() * s.patch() * 4);
}
BENCHMARK(BM_PatchIm2colBlindKernel)->UseRealTime();

// bytes = the blinded patch-gradient matrix dP' it reads.
void BM_PatchDecryptDxCol2im(benchmark::State& state) {
  const auto s = patch_shape();
  const auto key = crypto::KeyGenerator().patch_conv_key(s.positions(), s.patch(), s.out_channels);
  const crypto::DimKey rows = crypto::KeyGenerator().dim_key(s.positions());
  const BlindedTensor dp = random_blinded({s.positions(), s.patch()});
  const crypto::PatchConvDecryptor dec(key, s);
  for (auto _ : state) benchmark::DoNotOptimize(dec.decrypt_dx(dp, rows).data());
  set_bytes(state, s.positions() * s.patch() * 4);
}
BENCHMARK(BM_PatchDecryptDxCol2im)->UseRealTime();

void BM_PatchDecryptOutput(benchmark::State& state) {
  const auto s = patch_shape();
  const auto key = crypto::KeyGenerator().patch_conv_key(s.positions(), s.patch(), s.out_channels);
  const BlindedTensor y = random_blinded({s.positions(), s.out_channels});
  const crypto::PatchConvDecryptor dec(key, s);
  for (auto _ : state) benchmark::DoNotOptimize(dec.decrypt_output(y).data());
  set_bytes(state, s.positions() * s.out_channels * 4);
}
BENCHMARK(BM_PatchDecryptOutput)->UseRealTime();

void BM_PatchEncryptGrad(benchmark::State& state) {
  const auto s = patch_shape();
  const auto key = crypto::KeyGenerator().patch_conv_key(s.positions(), s.patch(), s.out_channels);
  const crypto::DimKey rows = crypto::KeyGenerator().dim_key(s.positions());
  const Tensor dy = random_tensor(s.output_shape());
  const crypto::PatchConvEncryptor enc(key, s);
  for (auto _ : state) benchmark::DoNotOptimize(enc.encrypt_grad_for_dx(dy, rows).data());
  set_bytes(state, s.positions() * s.out_channels * 4);
}
BENCHMARK(BM_PatchEncryptGrad)->UseRealTime();

// ---- channel mode: X [32,64,32,32]
void BM_ChannelEncryptInput(benchmark::State& state) {
  const Tensor x = random_tensor({32, 64, 32, 32});
  const auto key = crypto::KeyGenerator().conv_channel_key(32, 64, 64);
  const crypto::ConvChannelEncryptor enc(key);
  for (auto _ : state) benchmark::DoNotOptimize(enc.encrypt_input(x).data());
  set_bytes(state, x.numel() * 4);
}
BENCHMARK(BM_ChannelEncryptInput)->UseRealTime();

void BM_ChannelDecryptOutput(benchmark::State& state) {
  const BlindedTensor y = random_blinded({32, 64, 32, 32});
  const auto key = crypto::KeyGenerator().conv_channel_key(32, 64, 64);
  const crypto::ConvChannelDecryptor dec(key);
  for (auto _ : state) benchmark::DoNotOptimize(dec.decrypt_output(y).data());
  set_bytes(state, y.bytes());
}
BENCHMARK(BM_ChannelDecryptOutput)->UseRealTime();

// ---- key generation (not memory-bound: one CSPRNG call per entry)
void BM_KeyGenerationPatch(benchmark::State& state) {
  const auto s = patch_shape();
  const crypto::KeyGenerator gen;
  for (auto _ : state)
    benchmark::DoNotOptimize(
        gen.patch_conv_key(s.positions(), s.patch(), s.out_channels).m.perm().data());
  state.SetItemsProcessed(state.iterations() * (s.positions() + s.patch() + s.out_channels));
}
BENCHMARK(BM_KeyGenerationPatch)->UseRealTime();

}  // namespace
}  // namespace tempo

BENCHMARK_MAIN();
