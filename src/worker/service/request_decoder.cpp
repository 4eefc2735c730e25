#include "worker/service/request_decoder.h"

#include <cstring>

#include "worker/op_shapes.h"
#include "worker/worker.h"

namespace tempo::worker::service {

namespace {

using google::protobuf::RepeatedField;

grpc::Status invalid(const std::string& m) { return {grpc::StatusCode::INVALID_ARGUMENT, m}; }

/// A declared shape: rank and dimensions in range, so Shape and byte counts cannot misbehave.
bool decode_shape(const RepeatedField<int64_t>& dims, const std::string& what, Shape* out,
                  std::string* error) {
  if (dims.size() > Shape::kMaxRank) {
    *error = what + " has rank " + std::to_string(dims.size()) + ", above the maximum " +
             std::to_string(Shape::kMaxRank);
    return false;
  }
  Shape s;
  for (int i = 0; i < dims.size(); ++i) {
    if (dims[i] < 0 || dims[i] > kMaxDim) {
      *error = what + ": dimension " + std::to_string(i) + " is " + std::to_string(dims[i]) +
               ", outside 0.." + std::to_string(kMaxDim);
      return false;
    }
    s.push_back(dims[i]);
  }
  *out = s;
  return true;
}

}  // namespace

std::string RequestDecoder::progress() const {
  return "request " + std::to_string(req_.id) + ": " + format_bytes(received_) + " of " +
         format_bytes(a_bytes_ + b_bytes_) + " of operand data received";
}

RequestDecoder::Result RequestDecoder::feed(wire::v1::ClientFrame& frame, protocol::Request* ready,
                                            grpc::Status* error) {
  switch (frame.kind_case()) {
    case wire::v1::ClientFrame::kRequest:
      if (in_progress_) {
        *error = invalid(progress() + " when the header of request " +
                         std::to_string(frame.request().id()) + " arrived; chunks must add up " +
                         "to the declared shapes");
        return Result::kError;
      }
      return start(frame.request(), ready, error);
    case wire::v1::ClientFrame::kChunk:
      return append(frame.chunk().data(), ready, error);
    case wire::v1::ClientFrame::kHello:
      *error = invalid("Hello sent twice: a session has one handshake");
      return Result::kError;
    case wire::v1::ClientFrame::KIND_NOT_SET:
      break;
  }
  *error = invalid("empty frame (no hello, request or chunk): not a Tempo client?");
  return Result::kError;
}

RequestDecoder::Result RequestDecoder::start(const wire::v1::RequestHeader& h,
                                             protocol::Request* ready, grpc::Status* error) {
  protocol::Request r;
  r.id = h.id();
  r.op = static_cast<protocol::Op>(h.op());
  const std::string name =
      "request " + std::to_string(h.id()) + " (" + protocol::op_name(r.op) + ")";
  int64_t bytes[2] = {0, 0};
  const wire::v1::OperandHeader* headers[2] = {&h.a(), &h.b()};
  protocol::Operand* operands[2] = {&r.a, &r.b};
  for (int i = 0; i < 2; ++i) {
    const std::string what = name + ": operand " + static_cast<char>('a' + i);
    const auto& oh = *headers[i];
    operands[i]->handle = oh.handle();
    if (!oh.has_data()) {
      if (oh.shape_size() != 0) {
        *error = invalid(what + " declares a shape but no data (a cached operand has no shape)");
        return Result::kError;
      }
      continue;
    }
    Shape s;
    std::string e;
    if (!decode_shape(oh.shape(), what, &s, &e)) {
      *error = invalid(e);
      return Result::kError;
    }
    // Dimensions are <= INT32_MAX and rank <= 6, so this product can still overflow: check it.
    int64_t n = 4;
    for (int d = 0; d < s.rank(); ++d) {
      if (__builtin_mul_overflow(n, s[d], &n) || n > max_tensor_bytes_) {
        *error = {grpc::StatusCode::RESOURCE_EXHAUSTED,
                  what + " " + s.to_string() + " is over the " + format_bytes(max_tensor_bytes_) +
                      " per-tensor limit"};
        return Result::kError;
      }
    }
    bytes[i] = n;
    operands[i]->tensor = BlindedTensor::allocate(s);
  }
  r.trans_a = h.trans_a();
  r.trans_b = h.trans_b();
  r.conv = {h.stride_h(), h.stride_w(), h.pad_h(), h.pad_w()};
  std::string e;
  if (!decode_shape(h.out_shape(), name + ": out_shape", &r.out_shape, &e)) {
    *error = invalid(e);
    return Result::kError;
  }
  r.free_handles.assign(h.free_handles().begin(), h.free_handles().end());
  req_ = std::move(r);
  a_bytes_ = bytes[0];
  b_bytes_ = bytes[1];
  received_ = 0;
  in_progress_ = true;
  if (a_bytes_ + b_bytes_ == 0) return finish(ready);
  return Result::kNeedMore;
}

RequestDecoder::Result RequestDecoder::append(const std::string& data, protocol::Request* ready,
                                              grpc::Status* error) {
  const int64_t n = static_cast<int64_t>(data.size());
  if (!in_progress_) {
    *error = invalid("chunk of " + format_bytes(n) + " with no request in progress");
    return Result::kError;
  }
  if (n == 0 || n > kMaxChunkBytes) {
    *error = invalid(progress() + "; a chunk of " + format_bytes(n) + " is outside 1 B.." +
                     format_bytes(kMaxChunkBytes));
    return Result::kError;
  }
  const int64_t total = a_bytes_ + b_bytes_;
  if (n > total - received_) {
    *error =
        invalid(progress() + "; a chunk of " + format_bytes(n) +
                " runs past the declared shapes (" + format_bytes(total - received_) + " missing)");
    return Result::kError;
  }
  // The payload is a's bytes then b's; a chunk may span the boundary.
  int64_t off = 0;
  if (received_ < a_bytes_) {
    const int64_t k = std::min(n, a_bytes_ - received_);
    std::memcpy(reinterpret_cast<char*>(req_.a.tensor.mutable_data()) + received_, data.data(),
                static_cast<size_t>(k));
    off = k;
  }
  if (off < n) {
    const int64_t at = received_ + off - a_bytes_;
    std::memcpy(reinterpret_cast<char*>(req_.b.tensor.mutable_data()) + at, data.data() + off,
                static_cast<size_t>(n - off));
  }
  received_ += n;
  if (received_ == total) return finish(ready);
  return Result::kNeedMore;
}

RequestDecoder::Result RequestDecoder::finish(protocol::Request* ready) {
  *ready = std::move(req_);
  req_ = {};
  in_progress_ = false;
  return Result::kReady;
}

grpc::StatusCode classify_worker_error(const std::string& m) {
  if (m.find("unknown handle") != std::string::npos) return grpc::StatusCode::NOT_FOUND;
  if (m.find("limit") != std::string::npos || m.find("cache full") != std::string::npos)
    return grpc::StatusCode::RESOURCE_EXHAUSTED;
  if (m.find("internal error") != std::string::npos || m.find(": backend ") != std::string::npos)
    return grpc::StatusCode::INTERNAL;
  return grpc::StatusCode::INVALID_ARGUMENT;
}

}  // namespace tempo::worker::service
