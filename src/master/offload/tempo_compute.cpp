#include "master/offload/tempo_compute.h"

#include <stdexcept>

#include "master/offload/offload_engine.h"

namespace tempo::offload {

namespace {

using protocol::Handle;
using protocol::Op;
using protocol::Operand;
using protocol::Request;

/// How the three worker products of one cached forward are asked for (forward, backward-data,
/// backward-weights). The obfuscator's Forward object says which shapes and transposes it needs.
struct ProductPlan {
  Op forward_op = Op::kMatMul, dx_op = Op::kMatMul, dw_op = Op::kMatMul;
  bool fwd_trans_b = false;
  bool dx_trans_b = false;
  bool dw_trans_a = false;
  bool dw_cached_x_is_b = false;  // patch mode computes dW' = dY'2ᵀ·X'
  protocol::ConvParams conv;
  Shape dx_shape, dw_shape;  // conv backward outputs
};

/// A forward whose blinded operands stay on the worker until the backward.
template <class Forward>
struct SavedOffload final : nn::SavedProduct {
  SavedOffload(Forward f, ProductPlan p) : fw(std::move(f)), plan(std::move(p)) {}
  Forward fw;
  ProductPlan plan;
  Handle x_handle = 0, w_handle = 0;
};

int64_t bytes_of(const BlindedTensor& t) { return t.bytes(); }

template <class Forward>
Tensor offload_forward(OffloadEngine& engine, const std::string& layer, Forward fw,
                       const ProductPlan& plan, std::unique_ptr<nn::SavedProduct>* saved) {
  Request r;
  r.op = plan.forward_op;
  r.trans_b = plan.fwd_trans_b;
  r.conv = plan.conv;
  const Handle hx = saved ? engine.new_handle() : 0;
  const Handle hw = saved ? engine.new_handle() : 0;
  r.a = Operand::inline_tensor(fw.x(), hx);
  r.b = Operand::inline_tensor(fw.w(), hw);
  const int64_t sent = bytes_of(fw.x()) + bytes_of(fw.w());
  auto pending = engine.send(std::move(r));
  fw.release_operands();
  BlindedTensor y = engine.receive(pending, layer, "the forward product");
  engine.stats().add(layer, sent, y.bytes(), sent + y.bytes());
  Tensor out = fw.decrypt(y);
  if (saved) {
    auto s = std::make_unique<SavedOffload<Forward>>(std::move(fw), plan);
    s->x_handle = hx;
    s->w_handle = hw;
    *saved = std::move(s);
  }
  return out;
}

template <class Forward>
void offload_backward(OffloadEngine& engine, const std::string& layer, const Tensor& dy,
                      SavedOffload<Forward>& s, Tensor* dx, Tensor* dw) {
  const ProductPlan& p = s.plan;
  std::future<protocol::Response> dx_pending, dw_pending;
  int64_t sent_dx = 0, sent_dw = 0;
  // The request that comes last frees both cached operands.
  const bool want_dw = dw != nullptr;
  if (dx) {
    Request r;
    r.op = p.dx_op;
    r.trans_b = p.dx_trans_b;
    r.conv = p.conv;
    r.out_shape = p.dx_shape;
    BlindedTensor g = s.fw.encrypt_grad_for_dx(dy);
    sent_dx = g.bytes();
    r.a = Operand::inline_tensor(std::move(g));
    r.b = Operand::cached(s.w_handle);
    if (!want_dw) r.free_handles = {s.x_handle, s.w_handle};
    dx_pending = engine.send(std::move(r));
  }
  if (want_dw) {
    Request r;
    r.op = p.dw_op;
    r.trans_a = p.dw_trans_a;
    r.conv = p.conv;
    r.out_shape = p.dw_shape;
    BlindedTensor g = s.fw.encrypt_grad_for_dw(dy);
    sent_dw = g.bytes();
    if (p.dw_cached_x_is_b) {
      r.a = Operand::inline_tensor(std::move(g));
      r.b = Operand::cached(s.x_handle);
    } else {
      r.a = Operand::cached(s.x_handle);
      r.b = Operand::inline_tensor(std::move(g));
    }
    r.free_handles = {s.x_handle, s.w_handle};
    dw_pending = engine.send(std::move(r));
  }
  if (!dx && !want_dw) {
    Request r;
    r.op = Op::kFree;
    r.free_handles = {s.x_handle, s.w_handle};
    auto pending = engine.send(std::move(r));
    engine.receive(pending, layer, "freeing the cached operands");
    return;
  }
  if (dx) {
    BlindedTensor g = engine.receive(dx_pending, layer, "the backward-data product");
    engine.stats().add(layer, sent_dx, g.bytes(), sent_dx + g.bytes());
    *dx = s.fw.decrypt_dx(g);
  }
  if (want_dw) {
    BlindedTensor g = engine.receive(dw_pending, layer, "the backward-weights product");
    engine.stats().add(layer, sent_dw, g.bytes(), sent_dw + g.bytes());
    *dw = s.fw.decrypt_dw(g);
  }
}

template <class Forward>
SavedOffload<Forward>* saved_as(std::unique_ptr<nn::SavedProduct>* saved) {
  return saved ? dynamic_cast<SavedOffload<Forward>*>(saved->get()) : nullptr;
}

}  // namespace

Tensor TempoCompute::matmul(const Tensor& x, const Tensor& w,
                            std::unique_ptr<nn::SavedProduct>* saved) {
  ProductPlan plan;
  plan.dx_trans_b = true;  // dX' = dY'1 · W'ᵀ
  plan.dw_trans_a = true;  // dW' = X'ᵀ · dY'2
  return offload_forward(engine_, layer_, engine_.matmul().encrypt(x, w), plan, saved);
}

void TempoCompute::matmul_backward(const Tensor& dy, std::unique_ptr<nn::SavedProduct>* saved,
                                   Tensor* dx, Tensor* dw) {
  auto* s = saved_as<crypto::MatmulForward>(saved);
  if (!s) throw std::logic_error(layer_ + ": matmul_backward without an offloaded forward");
  offload_backward(engine_, layer_, dy, *s, dx, dw);
  saved->reset();
}

Tensor TempoCompute::conv2d(const Tensor& x, const Tensor& w, const nn::ConvGeometry& g,
                            std::unique_ptr<nn::SavedProduct>* saved) {
  return conv_mode_ == ConvMode::kPatch ? patch_conv2d(x, w, g, saved)
                                        : channel_conv2d(x, w, g, saved);
}

Tensor TempoCompute::patch_conv2d(const Tensor& x, const Tensor& w, const nn::ConvGeometry& g,
                                  std::unique_ptr<nn::SavedProduct>* saved) {
  ProductPlan plan;
  plan.fwd_trans_b = true;        // Y' = X'·W'ᵀ   [M,K]·[O,K]ᵀ
  plan.dw_trans_a = true;         // dW' = dY'2ᵀ·X'
  plan.dw_cached_x_is_b = true;
  return offload_forward(engine_, layer_, engine_.patch_conv().encrypt(x, w, g), plan, saved);
}

Tensor TempoCompute::channel_conv2d(const Tensor& x, const Tensor& w, const nn::ConvGeometry& g,
                                    std::unique_ptr<nn::SavedProduct>* saved) {
  ProductPlan plan;
  plan.forward_op = Op::kConvForward;
  plan.dx_op = Op::kConvBackwardData;
  plan.dw_op = Op::kConvBackwardWeights;
  plan.conv = {g.stride_h, g.stride_w, g.pad_h, g.pad_w};
  plan.dx_shape = x.shape();
  plan.dw_shape = w.shape();
  return offload_forward(engine_, layer_, engine_.channel_conv().encrypt(x, w), plan, saved);
}

void TempoCompute::conv2d_backward(const Tensor& dy, std::unique_ptr<nn::SavedProduct>* saved,
                                   Tensor* dx, Tensor* dw) {
  if (auto* s = saved_as<crypto::PatchConvForward>(saved)) {
    offload_backward(engine_, layer_, dy, *s, dx, dw);
  } else if (auto* c = saved_as<crypto::ConvChannelForward>(saved)) {
    offload_backward(engine_, layer_, dy, *c, dx, dw);
  } else {
    throw std::logic_error(layer_ + ": conv2d_backward without an offloaded forward");
  }
  saved->reset();
}

Tensor TempoCompute::batched_matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
  crypto::BatchedMatmulProduct product = engine_.batched_matmul().encrypt(a, b, trans_a, trans_b);
  Request r;
  r.op = Op::kBatchedMatMul;
  r.trans_a = trans_a;
  r.trans_b = trans_b;
  r.a = Operand::inline_tensor(product.a());
  r.b = Operand::inline_tensor(product.b());
  const int64_t sent = product.a().bytes() + product.b().bytes();
  auto pending = engine_.send(std::move(r));
  BlindedTensor c = engine_.receive(pending, layer_, "an attention product");
  engine_.stats().add(layer_, sent, c.bytes(), sent + c.bytes());
  return product.decrypt(c);
}

}  // namespace tempo::offload
