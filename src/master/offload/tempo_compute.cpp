#include "master/offload/tempo_compute.h"

#include <memory>
#include <optional>
#include <stdexcept>

#include "master/core/blas.h"
#include "master/nn/plain_compute.h"
#include "master/nn/plain_conv_backend.h"

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
  bool is_conv = false;      // for computing in the TEE: conv2d or matmul
  nn::ConvGeometry geometry;
};

/// A forward whose blinded operands stay on the worker until the backward. While results are
/// checked, the master keeps its references to them too (X', W' in `fw`: the backward checks need
/// them) and to the plaintext operands (to compute a rejected result in the TEE).
template <class Forward>
struct SavedOffload final : nn::SavedProduct {
  SavedOffload(Forward f, ProductPlan p) : fw(std::move(f)), plan(std::move(p)) {}
  Forward fw;
  ProductPlan plan;
  Handle x_handle = 0, w_handle = 0;
  Tensor x, w;
};

int64_t bytes_of(const BlindedTensor& t) { return t.bytes(); }

/// The forward computed in the TEE, on plaintext (a rejected result, or a quarantined worker).
Tensor local_forward(const ProductPlan& p, const Tensor& x, const Tensor& w) {
  return p.is_conv ? nn::plain_compute().conv2d(x, w, p.geometry, nullptr)
                   : nn::plain_compute().matmul(x, w, nullptr);
}

/// dX and/or dW computed in the TEE, on plaintext.
void local_backward(const ProductPlan& p, const Tensor& x, const Tensor& w, const Tensor& dy,
                    Tensor* dx, Tensor* dw) {
  if (!dx && !dw) return;
  if (p.is_conv) {
    auto s = std::make_unique<nn::detail::SavedPlainConv>();
    s->backend = nn::ConvBackend::kIm2col;
    s->x = x;
    s->w = w;
    s->g = p.geometry;
    std::unique_ptr<nn::SavedProduct> saved = std::move(s);
    nn::plain_conv2d_backward(dy, &saved, dx, dw);
    return;
  }
  const int64_t m = x.dim(0), k = x.dim(1), n = w.dim(1);
  if (dx) {
    *dx = Tensor({m, k});
    blas::gemm(false, true, m, k, n, 1.0f, dy.data(), w.data(), 0.0f, dx->data());
  }
  if (dw) {
    *dw = Tensor({k, n});
    blas::gemm(true, false, k, n, m, 1.0f, x.data(), dy.data(), 0.0f, dw->data());
  }
}

template <class Forward>
Tensor offload_forward(OffloadEngine& engine, const std::string& layer, const Tensor& x,
                       const Tensor& w, Forward fw, const ProductPlan& plan,
                       std::unique_ptr<nn::SavedProduct>* saved) {
  const bool verify = engine.verifying();
  Request r;
  r.op = plan.forward_op;
  r.trans_b = plan.fwd_trans_b;
  r.conv = plan.conv;
  const Handle hx = saved ? engine.new_handle() : 0;
  const Handle hw = saved ? engine.new_handle() : 0;
  r.a = Operand::inline_tensor(fw.x(), hx);
  r.b = Operand::inline_tensor(fw.w(), hw);
  const int64_t sent = bytes_of(fw.x()) + bytes_of(fw.w());
  auto op = verify ? engine.submit(std::move(r), fw.x(), fw.w())
                   : engine.submit(std::move(r), BlindedTensor(), BlindedTensor());
  if (!verify || !saved) fw.release_operands();  // op keeps what the check needs
  std::optional<BlindedTensor> y = engine.receive_verified(op, layer, "forward product");
  Tensor out;
  if (y) {
    engine.stats().add(layer, sent, y->bytes(), sent + y->bytes());
    out = fw.decrypt(*y);
  } else {
    engine.stats().add(layer, sent, 0, sent);
    out = local_forward(plan, x, w);
  }
  if (saved) {
    auto s = std::make_unique<SavedOffload<Forward>>(std::move(fw), plan);
    s->x_handle = hx;
    s->w_handle = hw;
    if (verify) {
      s->x = x;
      s->w = w;
    }
    *saved = std::move(s);
  }
  return out;
}

template <class Forward>
void offload_backward(OffloadEngine& engine, const std::string& layer, const Tensor& dy,
                      SavedOffload<Forward>& s, Tensor* dx, Tensor* dw) {
  const ProductPlan& p = s.plan;
  if (engine.quarantined()) {
    // The worker is not contacted again (its cached operands are simply abandoned).
    local_backward(p, s.x, s.w, dy, dx, dw);
    engine.integrity().computed_locally();
    return;
  }
  const bool verify = engine.verifying();
  std::optional<OffloadEngine::InFlight> dx_op, dw_op;
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
    r.a = Operand::inline_tensor(g);
    r.b = Operand::cached(s.w_handle);
    if (!want_dw) r.free_handles = {s.x_handle, s.w_handle};
    dx_op = verify ? engine.submit(std::move(r), std::move(g), s.fw.w())
                   : engine.submit(std::move(r), BlindedTensor(), BlindedTensor());
  }
  if (want_dw) {
    Request r;
    r.op = p.dw_op;
    r.trans_a = p.dw_trans_a;
    r.conv = p.conv;
    r.out_shape = p.dw_shape;
    BlindedTensor g = s.fw.encrypt_grad_for_dw(dy);
    sent_dw = g.bytes();
    BlindedTensor a = p.dw_cached_x_is_b ? g : s.fw.x();
    BlindedTensor b = p.dw_cached_x_is_b ? s.fw.x() : g;
    if (p.dw_cached_x_is_b) {
      r.a = Operand::inline_tensor(std::move(g));
      r.b = Operand::cached(s.x_handle);
    } else {
      r.a = Operand::cached(s.x_handle);
      r.b = Operand::inline_tensor(std::move(g));
    }
    r.free_handles = {s.x_handle, s.w_handle};
    dw_op = verify ? engine.submit(std::move(r), std::move(a), std::move(b))
                   : engine.submit(std::move(r), BlindedTensor(), BlindedTensor());
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
    auto g = engine.receive_verified(*dx_op, layer, "backward-data product");
    if (g) {
      engine.stats().add(layer, sent_dx, g->bytes(), sent_dx + g->bytes());
      *dx = s.fw.decrypt_dx(*g);
    } else {
      local_backward(p, s.x, s.w, dy, dx, nullptr);
    }
  }
  if (want_dw) {
    auto g = engine.receive_verified(*dw_op, layer, "backward-weights product");
    if (g) {
      engine.stats().add(layer, sent_dw, g->bytes(), sent_dw + g->bytes());
      *dw = s.fw.decrypt_dw(*g);
    } else {
      local_backward(p, s.x, s.w, dy, nullptr, dw);
    }
  }
}

template <class Forward>
SavedOffload<Forward>* saved_as(std::unique_ptr<nn::SavedProduct>* saved) {
  return saved ? dynamic_cast<SavedOffload<Forward>*>(saved->get()) : nullptr;
}

/// Counts a product run in the TEE because the worker is quarantined.
bool run_locally(OffloadEngine& engine) {
  if (!engine.quarantined()) return false;
  engine.integrity().computed_locally();
  return true;
}

}  // namespace

Tensor TempoCompute::matmul(const Tensor& x, const Tensor& w,
                            std::unique_ptr<nn::SavedProduct>* saved) {
  if (run_locally(engine_)) return nn::plain_compute().matmul(x, w, saved);
  ProductPlan plan;
  plan.dx_trans_b = true;  // dX' = dY'1 · W'ᵀ
  plan.dw_trans_a = true;  // dW' = X'ᵀ · dY'2
  return offload_forward(engine_, layer_, x, w, engine_.matmul().encrypt(x, w), plan, saved);
}

void TempoCompute::matmul_backward(const Tensor& dy, std::unique_ptr<nn::SavedProduct>* saved,
                                   Tensor* dx, Tensor* dw) {
  auto* s = saved_as<crypto::MatmulForward>(saved);
  if (!s) {
    // The forward ran in the TEE (quarantined worker): so does the backward.
    if (!engine_.quarantined())
      throw std::logic_error(layer_ + ": matmul_backward without an offloaded forward");
    engine_.integrity().computed_locally();
    return nn::plain_compute().matmul_backward(dy, saved, dx, dw);
  }
  offload_backward(engine_, layer_, dy, *s, dx, dw);
  saved->reset();
}

Tensor TempoCompute::conv2d(const Tensor& x, const Tensor& w, const nn::ConvGeometry& g,
                            std::unique_ptr<nn::SavedProduct>* saved) {
  if (run_locally(engine_)) return nn::plain_compute().conv2d(x, w, g, saved);
  return conv_mode_ == ConvMode::kPatch ? patch_conv2d(x, w, g, saved)
                                        : channel_conv2d(x, w, g, saved);
}

Tensor TempoCompute::patch_conv2d(const Tensor& x, const Tensor& w, const nn::ConvGeometry& g,
                                  std::unique_ptr<nn::SavedProduct>* saved) {
  ProductPlan plan;
  plan.fwd_trans_b = true;  // Y' = X'·W'ᵀ   [M,K]·[O,K]ᵀ
  plan.dw_trans_a = true;   // dW' = dY'2ᵀ·X'
  plan.dw_cached_x_is_b = true;
  plan.is_conv = true;
  plan.geometry = g;
  return offload_forward(engine_, layer_, x, w, engine_.patch_conv().encrypt(x, w, g), plan, saved);
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
  plan.is_conv = true;
  plan.geometry = g;
  return offload_forward(engine_, layer_, x, w, engine_.channel_conv().encrypt(x, w), plan, saved);
}

void TempoCompute::conv2d_backward(const Tensor& dy, std::unique_ptr<nn::SavedProduct>* saved,
                                   Tensor* dx, Tensor* dw) {
  if (auto* s = saved_as<crypto::PatchConvForward>(saved)) {
    offload_backward(engine_, layer_, dy, *s, dx, dw);
  } else if (auto* c = saved_as<crypto::ConvChannelForward>(saved)) {
    offload_backward(engine_, layer_, dy, *c, dx, dw);
  } else if (engine_.quarantined()) {
    engine_.integrity().computed_locally();
    return nn::plain_compute().conv2d_backward(dy, saved, dx, dw);
  } else {
    throw std::logic_error(layer_ + ": conv2d_backward without an offloaded forward");
  }
  saved->reset();
}

Tensor TempoCompute::batched_matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
  if (run_locally(engine_)) return nn::plain_compute().batched_matmul(a, b, trans_a, trans_b);
  crypto::BatchedMatmulProduct product = engine_.batched_matmul().encrypt(a, b, trans_a, trans_b);
  Request r;
  r.op = Op::kBatchedMatMul;
  r.trans_a = trans_a;
  r.trans_b = trans_b;
  r.a = Operand::inline_tensor(product.a());
  r.b = Operand::inline_tensor(product.b());
  const int64_t sent = product.a().bytes() + product.b().bytes();
  auto op = engine_.verifying() ? engine_.submit(std::move(r), product.a(), product.b())
                                : engine_.submit(std::move(r), BlindedTensor(), BlindedTensor());
  std::optional<BlindedTensor> c = engine_.receive_verified(op, layer_, "attention product");
  if (!c) {
    engine_.stats().add(layer_, sent, 0, sent);
    return nn::plain_compute().batched_matmul(a, b, trans_a, trans_b);
  }
  engine_.stats().add(layer_, sent, c->bytes(), sent + c->bytes());
  return product.decrypt(*c);
}

}  // namespace tempo::offload
