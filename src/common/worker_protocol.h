// The request/response protocol between the master and a worker. Transport-agnostic: the embedded
// worker passes these structs in memory; the remote service encodes them on the wire.
// Everything here is visible to the untrusted worker: only blinded tensors, shapes and handles.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/blinded_tensor.h"

namespace tempo::protocol {

constexpr uint32_t kProtocolVersion = 1;

/// Names an operand cached on a worker. 0 means "no handle". Chosen by the master, unique per
/// worker connection; never derived from a key.
using Handle = uint64_t;

/// One operand of an operation: sent inline, or taken from the worker's cache.
struct Operand {
  BlindedTensor tensor;  ///< inline data (empty when `handle` refers to a cached operand)
  Handle handle = 0;  ///< with inline data: cache it under this handle; alone: use the cached one
  static Operand inline_tensor(BlindedTensor t, Handle keep_as = 0) {
    return {std::move(t), keep_as};
  }
  static Operand cached(Handle h) { return {BlindedTensor{}, h}; }
  bool is_cached_reference() const { return tensor.empty() && handle != 0; }
};

enum class Op : uint32_t {
  kMatMul = 1,               ///< C = op(A)·op(B); A, B rank 2
  kBatchedMatMul = 2,        ///< C[b] = op(A[b])·op(B[b]); A, B rank 3
  kConvForward = 3,          ///< Y = conv(X, W); X NCHW, W OCkhkw
  kConvBackwardData = 4,     ///< dX = conv_bwd_data(dY, W) for input shape `out_shape`
  kConvBackwardWeights = 5,  ///< dW = conv_bwd_weights(X, dY) for weight shape `out_shape`
  kFree = 6,                 ///< drop the cached operands listed in `free_handles`
};
const char* op_name(Op op);

struct ConvParams {
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
};

struct Request {
  uint64_t id = 0;
  Op op = Op::kMatMul;
  Operand a;  ///< MatMul/Batched: A. ConvForward: X. BackwardData: dY. BackwardWeights: X.
  Operand b;  ///< MatMul/Batched: B. ConvForward: W. BackwardData: W.  BackwardWeights: dY.
  bool trans_a = false, trans_b = false;
  ConvParams conv;
  Shape out_shape;                   ///< conv backward: the shape of dX or dW to produce
  std::vector<Handle> free_handles;  ///< freed after the operation (any op), or alone with kFree
};

struct Response {
  uint64_t id = 0;
  bool ok = true;
  std::string error;  ///< precise message when !ok; the worker stays up
  /// With !ok: the worker could not be reached or its session broke (killed, hung past the
  /// deadline, disconnected), so the request was not rejected but may be sent to another worker.
  bool unavailable = false;
  BlindedTensor result;  ///< empty for kFree
};

/// What a worker offers (handshake).
struct Capabilities {
  uint32_t protocol_version = kProtocolVersion;
  std::string backend;  ///< "cpu", "cuda:0", ...
  std::string device;   ///< human-readable device name
  int64_t max_cache_bytes = 0;
  int64_t max_tensor_bytes = 0;
  /// The arithmetic of the backend's products: "fp32", or "tf32" (inputs rounded to a 10-bit
  /// mantissa). The master checks results against that precision's error bound, and accepts a
  /// tf32 worker only when told to (--worker-precision tf32).
  std::string precision = "fp32";
};

}  // namespace tempo::protocol
