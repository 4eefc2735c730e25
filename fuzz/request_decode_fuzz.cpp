// libFuzzer target: what a hostile client can send after the handshake, through the worker's
// request decoder (frame parsing, size validation, reassembly) and Worker::execute's validation.
//
// Input: a sequence of records [2-byte little-endian length][that many bytes: a serialized
// ClientFrame]. Each input runs against a fresh worker with small limits, so allocations stay
// bounded and every execution is independent. Run it with fuzz/run.sh.
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "common/remote/request_encoder.h"
#include "worker/service/request_decoder.h"
#include "worker/worker.h"

namespace {

using namespace tempo;

constexpr int64_t kMaxTensorBytes = 64 << 10;

std::unique_ptr<worker::Worker> make_small_worker() {
  worker::WorkerOptions o;
  o.threads = 1;
  o.limits.max_tensor_bytes = kMaxTensorBytes;
  o.limits.max_cache_bytes = 4 * kMaxTensorBytes;
  return worker::make_worker(o);
}

BlindedTensor filled(const Shape& s, std::mt19937& rng) {
  BlindedTensor t = BlindedTensor::allocate(s);
  for (int64_t i = 0; i < t.numel(); ++i) t.mutable_data()[i] = static_cast<float>(rng() % 7) - 3;
  return t;
}

/// Appends `r`'s frames as records to `out`, in chunks of `chunk` bytes.
void append_request(const protocol::Request& r, std::string* out, int64_t chunk) {
  remote::encode_request(
      r,
      [out](const wire::v1::ClientFrame& f) {
        const std::string s = f.SerializeAsString();
        out->push_back(static_cast<char>(s.size() & 0xff));
        out->push_back(static_cast<char>(s.size() >> 8));
        *out += s;
        return true;
      },
      chunk);
}

/// Valid sessions for a seed corpus: products, cached operands, conv forward and backward, free.
void write_seeds(const std::string& dir) {
  std::filesystem::create_directories(dir);
  std::mt19937 rng(1);
  using protocol::Op;
  using protocol::Operand;
  std::string s;
  protocol::Request mm;
  mm.id = 1;
  mm.a = Operand::inline_tensor(filled({3, 4}, rng), 5);
  mm.b = Operand::inline_tensor(filled({4, 2}, rng));
  append_request(mm, &s, 20);
  protocol::Request again;
  again.id = 2;
  again.a = Operand::cached(5);
  again.b = Operand::inline_tensor(filled({2, 4}, rng));
  again.trans_b = true;
  again.free_handles = {5};
  append_request(again, &s, 1 << 20);
  std::ofstream(dir + "/matmul_cached") << s;

  s.clear();
  protocol::Request bm;
  bm.id = 1;
  bm.op = Op::kBatchedMatMul;
  bm.a = Operand::inline_tensor(filled({2, 3, 4}, rng));
  bm.b = Operand::inline_tensor(filled({2, 4, 3}, rng));
  append_request(bm, &s, 16);
  std::ofstream(dir + "/batched") << s;

  s.clear();
  const protocol::ConvParams p{1, 2, 1, 0};
  protocol::Request fwd;
  fwd.id = 1;
  fwd.op = Op::kConvForward;
  fwd.a = Operand::inline_tensor(filled({2, 3, 6, 6}, rng), 1);
  fwd.b = Operand::inline_tensor(filled({4, 3, 3, 3}, rng), 2);
  fwd.conv = p;
  append_request(fwd, &s, 100);
  protocol::Request bd;
  bd.id = 2;
  bd.op = Op::kConvBackwardData;
  bd.a = Operand::inline_tensor(filled({2, 4, 6, 2}, rng));
  bd.b = Operand::cached(2);
  bd.conv = p;
  bd.out_shape = {2, 3, 6, 6};
  append_request(bd, &s, 1 << 20);
  protocol::Request bw;
  bw.id = 3;
  bw.op = Op::kConvBackwardWeights;
  bw.a = Operand::cached(1);
  bw.b = Operand::inline_tensor(filled({2, 4, 6, 2}, rng));
  bw.conv = p;
  bw.out_shape = {4, 3, 3, 3};
  append_request(bw, &s, 1 << 20);
  protocol::Request fr;
  fr.id = 4;
  fr.op = Op::kFree;
  fr.free_handles = {1, 2};
  append_request(fr, &s, 1 << 20);
  std::ofstream(dir + "/conv_session") << s;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("TEMPO_FUZZ_WRITE_SEEDS")) {
    write_seeds(dir);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto w = make_small_worker();
  worker::service::RequestDecoder decoder(kMaxTensorBytes);
  wire::v1::ClientFrame frame;
  size_t pos = 0;
  while (pos + 2 <= size) {
    const size_t n = data[pos] | (size_t{data[pos + 1]} << 8);
    pos += 2;
    if (n > size - pos) break;
    if (!frame.ParseFromArray(data + pos, static_cast<int>(n))) break;  // gRPC would refuse it too
    pos += n;
    protocol::Request r;
    grpc::Status error;
    const auto result = decoder.feed(frame, &r, &error);
    if (result == worker::service::RequestDecoder::Result::kError) {
      if (error.ok() || error.error_message().empty()) std::abort();  // errors must say why
      break;
    }
    if (result == worker::service::RequestDecoder::Result::kReady) {
      const protocol::Response resp = w->execute(std::move(r));
      if (!resp.ok && resp.error.empty()) std::abort();
      if (resp.ok && resp.result.bytes() > kMaxTensorBytes) std::abort();  // limits hold
    }
  }
  return 0;
}
