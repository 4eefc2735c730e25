#include "common/remote/request_encoder.h"

#include <algorithm>

namespace tempo::remote {

namespace {

bool has_data(const protocol::Operand& o) { return !o.tensor.empty() || o.tensor.rank() > 0; }

void encode_operand(const protocol::Operand& o, wire::v1::OperandHeader* out) {
  out->set_handle(o.handle);
  out->set_has_data(has_data(o));
  if (!has_data(o)) return;
  for (int i = 0; i < o.tensor.rank(); ++i) out->add_shape(o.tensor.dim(i));
}

}  // namespace

void encode_request_header(const protocol::Request& r, wire::v1::RequestHeader* out) {
  out->set_id(r.id);
  out->set_op(static_cast<uint32_t>(r.op));
  encode_operand(r.a, out->mutable_a());
  encode_operand(r.b, out->mutable_b());
  out->set_trans_a(r.trans_a);
  out->set_trans_b(r.trans_b);
  out->set_stride_h(r.conv.stride_h);
  out->set_stride_w(r.conv.stride_w);
  out->set_pad_h(r.conv.pad_h);
  out->set_pad_w(r.conv.pad_w);
  for (int i = 0; i < r.out_shape.rank(); ++i) out->add_out_shape(r.out_shape[i]);
  for (protocol::Handle h : r.free_handles) out->add_free_handles(h);
}

bool encode_request(const protocol::Request& r,
                    const std::function<bool(const wire::v1::ClientFrame&)>& write,
                    int64_t chunk_bytes) {
  wire::v1::ClientFrame frame;
  encode_request_header(r, frame.mutable_request());
  if (!write(frame)) return false;
  std::string* data = frame.mutable_chunk()->mutable_data();
  for (const protocol::Operand* o : {&r.a, &r.b}) {
    if (!has_data(*o)) continue;
    const char* p = reinterpret_cast<const char*>(o->tensor.data());
    const int64_t total = o->tensor.bytes();
    for (int64_t off = 0; off < total; off += chunk_bytes) {
      data->assign(p + off, static_cast<size_t>(std::min(chunk_bytes, total - off)));
      if (!write(frame)) return false;
    }
  }
  return true;
}

}  // namespace tempo::remote
