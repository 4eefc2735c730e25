#include "master/offload/tempo_compute.h"

#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <type_traits>

#include "master/core/blas.h"
#include "master/integrity/prepared_check.h"
#include "master/nn/plain_compute.h"
#include "master/nn/plain_conv_backend.h"

#include "master/offload/batch_rows.h"
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
  Shape dw_shape;        // the backward-weights output of a channel-mode conv
  bool is_conv = false;  // for computing in the TEE: conv2d or matmul
  bool batched = false;  // attention: both operands split by batch, dW concatenated, not summed
  nn::ConvGeometry geometry;
};

/// One shard of a forward (a slice of the batch, blinded under its own key) whose blinded
/// operands stay on its worker until the backward. The master keeps the shard's plaintext rows
/// and the weights: a product that no worker can compute (or whose result failed its check) is
/// computed in the TEE from them.
template <class Forward>
struct ShardForward {
  std::optional<Forward> fw;  ///< empty when the forward ran in the TEE
  Handle x_handle = 0, w_handle = 0;
  int worker = 0;
  Tensor x;  ///< plaintext rows of this shard (the whole input when there is one shard)
  Tensor w;  ///< batched products: this shard's entries of the second operand
};

template <class Forward>
struct SavedOffload final : nn::SavedProduct {
  ProductPlan plan;
  Tensor w;
  std::vector<ShardForward<Forward>> shards;
};

int64_t bytes_of(const BlindedTensor& t) { return t.bytes(); }

/// Adds the time from construction to the next phase() (or destruction) to a phase's total.
class PhaseClock {
 public:
  PhaseClock(OffloadStats& stats, OffloadPhase phase)
      : stats_(stats), phase_(phase), since_(Clock::now()) {}
  ~PhaseClock() { phase(phase_); }
  PhaseClock(const PhaseClock&) = delete;
  PhaseClock& operator=(const PhaseClock&) = delete;
  /// Closes the current phase and opens `next`.
  void phase(OffloadPhase next) {
    const auto now = Clock::now();
    stats_.add_time(phase_,
                    std::chrono::duration_cast<std::chrono::nanoseconds>(now - since_).count());
    phase_ = next;
    since_ = now;
  }

 private:
  using Clock = std::chrono::steady_clock;
  OffloadStats& stats_;
  OffloadPhase phase_;
  Clock::time_point since_;
};

/// Submits a product, keeping its operands for the check when results are verified. Timed as
/// waiting, not blinding: an inline embedded worker (worker::EmbeddedDispatch) computes in it.
OffloadEngine::InFlight submit_product(OffloadEngine& engine, PhaseClock& clock, Request r,
                                       BlindedTensor a, BlindedTensor b, int worker) {
  clock.phase(OffloadPhase::kWait);
  OffloadEngine::InFlight op =
      engine.verifying() ? engine.submit(std::move(r), std::move(a), std::move(b), worker)
                         : engine.submit(std::move(r), BlindedTensor(), BlindedTensor(), worker);
  clock.phase(OffloadPhase::kBlind);
  return op;
}

/// The forward computed in the TEE, on plaintext (no worker, a rejected result, quarantine).
Tensor local_forward(const ProductPlan& p, const Tensor& x, const Tensor& w) {
  if (p.batched) return nn::plain_compute().batched_matmul(x, w, false, p.fwd_trans_b);
  return p.is_conv ? nn::plain_compute().conv2d(x, w, p.geometry, nullptr)
                   : nn::plain_compute().matmul(x, w, nullptr);
}

/// dX and/or dW computed in the TEE, on plaintext.
void local_backward(const ProductPlan& p, const Tensor& x, const Tensor& w, const Tensor& dy,
                    Tensor* dx, Tensor* dw) {
  if (!dx && !dw) return;
  if (p.batched) {
    nn::Compute& plain = nn::plain_compute();
    if (dx) *dx = plain.batched_matmul(dy, w, false, !p.fwd_trans_b);  // dC·op(B)ᵀ
    if (dw)
      *dw = p.fwd_trans_b ? plain.batched_matmul(dy, x, true, false)   // dCᵀ·A
                          : plain.batched_matmul(x, dy, true, false);  // Aᵀ·dC
    return;
  }
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

void add_into(Tensor& sum, const Tensor& t) {
  float* s = sum.data();
  const float* v = t.data();
  const int64_t n = sum.numel();
#pragma omp parallel for simd schedule(static) if (n > (int64_t{1} << 16))
  for (int64_t i = 0; i < n; ++i) s[i] += v[i];
}

/// The forward and backward-data decryptions, taking the row projection that
/// OffloadEngine::receive_decrypted asks of product results (patch mode's, Linear's, attention's).
/// Channel mode's results are convolutions, which it never asks to project (conv_check.h checks
/// them).
template <class Forward>
Tensor decrypt_output(const Forward& fw, const BlindedTensor& y,
                      const crypto::RowProjection* projection) {
  return fw.decrypt(y, projection);
}
template <class Forward>
Tensor decrypt_input_grad(const Forward& fw, const BlindedTensor& dx,
                          const crypto::RowProjection* projection) {
  return fw.decrypt_dx(dx, projection);
}
Tensor decrypt_output(const crypto::ConvChannelForward& fw, const BlindedTensor& y,
                      const crypto::RowProjection* projection) {
  if (projection) throw std::logic_error("channel-mode results are not projected by decryption");
  return fw.decrypt(y);
}
Tensor decrypt_input_grad(const crypto::ConvChannelForward& fw, const BlindedTensor& dx,
                          const crypto::RowProjection* projection) {
  if (projection) throw std::logic_error("channel-mode results are not projected by decryption");
  return fw.decrypt_dx(dx);
}

/// A projection of a forward's blinded input X' for the checks that does not read X' (see
/// integrity::OperandProjection): patch mode computes it from the plaintext input, a one-filter
/// convolution of X instead of a pass over the kh·kw times larger patch matrix; `op` takes it
/// as its A side, or as its B side (on the check's ±1 vectors, summed in fp32 lanes), with how
/// far it may be from X''s own (PatchConvForward::input_projection_error). Other modes: none.
void use_input_projection(OffloadEngine::InFlight& op, const crypto::PatchConvForward& fw,
                          const Tensor& x, bool as_b) {
  const auto sums =
      as_b ? crypto::patch::ProjectionSums::kSignLanes : crypto::patch::ProjectionSums::kDouble;
  integrity::OperandProjection projection = [&fw, &x, sums](const double* v, const double* v_abs,
                                                            int rounds, double* out,
                                                            double* out_abs) {
    return fw.project_input(x, v, v_abs, rounds, out, out_abs, sums);
  };
  (as_b ? op.project_b : op.project_a) = std::move(projection);
  op.projection_error = fw.input_projection_error(sums);
}
template <class Forward>
void use_input_projection(OffloadEngine::InFlight&, const Forward&, const Tensor&, bool) {}

/// Hands a check prepared while the operands were blinded to the operation (its vectors, B's side,
/// and A's side when `with_a`).
void use_prepared(OffloadEngine::InFlight& op, const integrity::PreparedCheck& prepared,
                  bool with_a) {
  if (with_a) op.project_a = prepared.replay_a();
  op.project_b = prepared.replay_b();
  op.preset_signs = prepared.signs();
}

/// Splits the batch over the live workers, blinds each shard under its own key, sends every
/// shard before awaiting the first result (so blinding, transfers, the workers' products and
/// unblinding overlap), then unblinds the shards in order. `encrypt(rows, w)` blinds one shard
/// (with its own entries of w for a batched product, else all of w).
template <class Forward, class Encrypt>
Tensor offload_forward(OffloadEngine& engine, const std::string& layer, const Tensor& x,
                       const Tensor& w, Encrypt encrypt, const ProductPlan& plan,
                       std::unique_ptr<nn::SavedProduct>* saved) {
  const bool verify = engine.verifying();
  PhaseClock clock(engine.stats(), OffloadPhase::kBlind);
  std::vector<WorkerPool::Shard> plan_rows = engine.plan_shards(x.dim(0));
  if (plan_rows.empty()) plan_rows.push_back({0, 0, x.dim(0)});  // no worker: fails over below
  const bool whole = plan_rows.size() == 1;
  auto s = std::make_unique<SavedOffload<Forward>>();
  s->plan = plan;
  s->w = w;
  s->shards.resize(plan_rows.size());
  std::vector<OffloadEngine::InFlight> ops(plan_rows.size());
  std::vector<int64_t> sent(plan_rows.size());
  for (size_t i = 0; i < plan_rows.size(); ++i) {
    ShardForward<Forward>& sh = s->shards[i];
    sh.worker = plan_rows[i].worker;
    sh.x = whole ? x : rows_of(x, plan_rows[i].begin, plan_rows[i].end);
    if (plan.batched) sh.w = whole ? w : rows_of(w, plan_rows[i].begin, plan_rows[i].end);
    // A Linear layer's check of Y' = X'·W': X''s projection is taken while X is blinded.
    std::shared_ptr<integrity::PreparedCheck> prepared;
    if constexpr (std::is_invocable_v<Encrypt&, const Tensor&, const Tensor&,
                                      const crypto::MatmulObfuscator::ProjectX&>) {
      crypto::RowProjection x_rows;
      crypto::MatmulObfuscator::ProjectX project_x;
      if (verify)
        project_x = [&](const BlindedTensor& wb) -> const crypto::RowProjection* {
          prepared = integrity::PreparedCheck::draw(engine.integrity().options().rounds,
                                                    sh.x.dim(0), sh.x.dim(1), wb.dim(1));
          prepared->project_b(wb, false);
          x_rows = prepared->a_rows();
          return &x_rows;
        };
      sh.fw.emplace(encrypt(sh.x, w, project_x));
    } else if constexpr (std::is_same_v<Forward, crypto::BatchedMatmulForward>) {
      // Attention, C = A·op(B) per entry: op(B)·v from B''s rows as they are written (B not
      // transposed) or in a pass over B' (transposed), then A''s rows projected as written.
      crypto::RowProjection a_rows, b_rows;
      crypto::BatchedMatmulObfuscator::ProjectA project_a;
      const crypto::RowProjection* project_b = nullptr;
      if (verify) {
        const int64_t n = plan.fwd_trans_b ? sh.w.dim(1) : sh.w.dim(2);
        prepared = integrity::PreparedCheck::draw(engine.integrity().options().rounds, sh.x.dim(1),
                                                  sh.x.dim(2), n, sh.x.dim(0));
        if (!plan.fwd_trans_b) {
          b_rows = prepared->b_rows();
          project_b = &b_rows;
        }
        project_a = [&](const BlindedTensor& wb) -> const crypto::RowProjection* {
          if (plan.fwd_trans_b) prepared->project_b(wb, true);
          a_rows = prepared->a_rows();
          return &a_rows;
        };
      }
      sh.fw.emplace(encrypt(sh.x, sh.w, project_b, project_a));
    } else {
      sh.fw.emplace(encrypt(sh.x, plan.batched ? sh.w : w));
    }
    Forward& fw = *sh.fw;
    Request r;
    r.op = plan.forward_op;
    r.trans_b = plan.fwd_trans_b;
    r.conv = plan.conv;
    sh.x_handle = saved ? engine.new_handle() : 0;
    sh.w_handle = saved ? engine.new_handle() : 0;
    r.a = Operand::inline_tensor(fw.x(), sh.x_handle);
    r.b = Operand::inline_tensor(fw.w(), sh.w_handle);
    sent[i] = bytes_of(fw.x()) + bytes_of(fw.w());
    ops[i] = submit_product(engine, clock, std::move(r), fw.x(), fw.w(), sh.worker);
    if (prepared)
      use_prepared(ops[i], *prepared, true);
    else if (verify)
      use_input_projection(ops[i], fw, sh.x, false);
    if (!verify || !saved) fw.release_operands();  // ops[i] keeps what the check needs
  }
  std::vector<Tensor> pieces(plan_rows.size());
  for (size_t i = 0; i < plan_rows.size(); ++i) {
    ShardForward<Forward>& sh = s->shards[i];
    clock.phase(OffloadPhase::kWait);
    std::optional<Tensor> y = engine.receive_decrypted(
        ops[i], layer, "forward product",
        [&](const BlindedTensor& r, const crypto::RowProjection* projection) {
          clock.phase(OffloadPhase::kUnblind);
          return decrypt_output(*sh.fw, r, projection);
        });
    clock.phase(OffloadPhase::kUnblind);
    if (y) {
      const int64_t got = ops[i].result_bytes;
      engine.stats().add(layer, sent[i], got, sent[i] + got);
      pieces[i] = std::move(*y);
    } else {
      engine.stats().add(layer, sent[i], 0, sent[i]);
      pieces[i] = local_forward(plan, sh.x, plan.batched ? sh.w : w);
      if (ops[i].lost) sh.fw.reset();  // nothing of it is cached anywhere: backward in the TEE
    }
  }
  if (saved) *saved = std::move(s);
  return whole ? std::move(pieces.front()) : concat_rows(pieces);
}

template <class Forward>
void offload_backward(OffloadEngine& engine, const std::string& layer, const Tensor& dy,
                      SavedOffload<Forward>& s, Tensor* dx, Tensor* dw) {
  const ProductPlan& p = s.plan;
  const bool verify = engine.verifying();
  const bool whole = s.shards.size() == 1;
  const bool want_dw = dw != nullptr;
  struct ShardBackward {
    Tensor dy;
    bool local = false;
    std::optional<OffloadEngine::InFlight> dx_op, dw_op;
    int64_t sent_dx = 0, sent_dw = 0;
  };
  std::vector<ShardBackward> b(s.shards.size());
  PhaseClock clock(engine.stats(), OffloadPhase::kBlind);
  int64_t row = 0;
  for (size_t i = 0; i < s.shards.size(); ++i) {
    ShardForward<Forward>& sh = s.shards[i];
    const int64_t rows = sh.x.dim(0);
    b[i].dy = whole ? dy : rows_of(dy, row, row + rows);
    row += rows;
    // A forward that ran in the TEE, or no worker to run this one: the TEE does it. A
    // quarantined worker is not contacted again (the pool re-uploads its operands elsewhere).
    b[i].local = !sh.fw || engine.must_run_locally();
    if (b[i].local) continue;
    Forward& fw = *sh.fw;
    // Both gradient operands in one pass over dY where the Forward can (Linear layers), which
    // also takes the checks' projections of both (PreparedCheck).
    std::optional<BlindedTensor> g_for_dw;
    std::shared_ptr<integrity::PreparedCheck> dx_prepared, dw_prepared;
    if (dx) {
      Request r;
      r.op = p.dx_op;
      r.trans_b = p.dx_trans_b;
      r.conv = p.conv;
      r.out_shape = p.is_conv && p.forward_op == Op::kConvForward ? sh.x.shape() : Shape{};
      // The checks' projections of the gradient operands, taken by the kernels that write them
      // (PreparedCheck). Per entry of a batched product, with the cached W' [rw, cw]:
      //  - dX' = dY'1·op(W')ᵀ, op(W')ᵀ [n, k]: B's side in a pass over W' now, A's from dY'1's
      //    rows (m of n floats) as written;
      //  - dW' = X'ᵀ·dY'2 (Linear, attention's A·V): B's side from dY'2's rows as written, A's
      //    (transposed) in the check's own pass over X'. With dw_cached_x_is_b (dW' = dY'2ᵀ·X':
      //    patch mode, attention's Q·Kᵀ) dY'2 is op(A), which a row projection cannot give: that
      //    check reads its operands.
      const crypto::RowProjection* dx_projection = nullptr;
      const crypto::RowProjection* dw_projection = nullptr;
      constexpr bool kBothAtOnce = requires { fw.encrypt_grads(b[i].dy, dx_projection, nullptr); };
      constexpr bool kDxAlone = requires { fw.encrypt_grad_for_dx(b[i].dy, dx_projection); };
      crypto::RowProjection dx_rows, dw_rows;
      if (verify && (kDxAlone || (kBothAtOnce && want_dw))) {
        const BlindedTensor& wb = fw.w();
        const int rank = wb.rank();
        const int64_t batch = rank == 3 ? wb.dim(0) : 1;
        const int64_t n = p.dx_trans_b ? wb.dim(rank - 1) : wb.dim(rank - 2);
        const int64_t k = p.dx_trans_b ? wb.dim(rank - 2) : wb.dim(rank - 1);
        const int64_t m = n > 0 ? b[i].dy.numel() / (batch * n) : 0;
        const int rounds = engine.integrity().options().rounds;
        dx_prepared = integrity::PreparedCheck::draw(rounds, m, n, k, batch);
        dx_prepared->project_b(wb, p.dx_trans_b);
        dx_rows = dx_prepared->a_rows();
        dx_projection = &dx_rows;
        if (kBothAtOnce && want_dw && !p.dw_cached_x_is_b) {  // dY'2 comes from that one pass
          dw_prepared = integrity::PreparedCheck::draw(rounds, k, m, n, batch);
          dw_rows = dw_prepared->b_rows();
          dw_projection = &dw_rows;
        }
      }
      BlindedTensor g;
      if constexpr (kBothAtOnce) {
        if (want_dw) {  // both gradient operands in one pass over dY
          auto both = fw.encrypt_grads(b[i].dy, dx_projection, dw_projection);
          g = std::move(both.first);
          g_for_dw = std::move(both.second);
        }
      }
      if (!g_for_dw) {
        if constexpr (kDxAlone)
          g = fw.encrypt_grad_for_dx(b[i].dy, dx_projection);
        else
          g = fw.encrypt_grad_for_dx(b[i].dy);
      }
      b[i].sent_dx = g.bytes();
      r.a = Operand::inline_tensor(g);
      r.b = Operand::cached(sh.w_handle);
      if (!want_dw) r.free_handles = {sh.x_handle, sh.w_handle};
      b[i].dx_op = submit_product(engine, clock, std::move(r), std::move(g), fw.w(), sh.worker);
      if (dx_prepared) use_prepared(*b[i].dx_op, *dx_prepared, true);
    }
    if (want_dw) {
      Request r;
      r.op = p.dw_op;
      r.trans_a = p.dw_trans_a;
      r.conv = p.conv;
      r.out_shape = p.dw_shape;
      BlindedTensor g = g_for_dw ? std::move(*g_for_dw) : fw.encrypt_grad_for_dw(b[i].dy);
      b[i].sent_dw = g.bytes();
      BlindedTensor a = p.dw_cached_x_is_b ? g : fw.x();
      BlindedTensor bb = p.dw_cached_x_is_b ? fw.x() : g;
      if (p.dw_cached_x_is_b) {
        r.a = Operand::inline_tensor(std::move(g));
        r.b = Operand::cached(sh.x_handle);
      } else {
        r.a = Operand::cached(sh.x_handle);
        r.b = Operand::inline_tensor(std::move(g));
      }
      r.free_handles = {sh.x_handle, sh.w_handle};
      b[i].dw_op =
          submit_product(engine, clock, std::move(r), std::move(a), std::move(bb), sh.worker);
      // X' is dW''s B side when dW' = dY'2ᵀ·X' (patch mode): projected on the check's ±1
      // vectors, which fp32 lanes sum within the check's bound.
      if (verify) use_input_projection(*b[i].dw_op, fw, sh.x, p.dw_cached_x_is_b);
      if (dw_prepared) use_prepared(*b[i].dw_op, *dw_prepared, false);
    }
    if (!dx && !want_dw) {
      Request r;
      r.op = Op::kFree;
      r.free_handles = {sh.x_handle, sh.w_handle};
      auto pending = engine.send(std::move(r), sh.worker);
      try {
        engine.receive(pending, layer, "freeing the cached operands");
      } catch (const WorkersUnavailableError&) {
        // The worker that held them is gone, and its cache with it.
      }
    }
  }
  if (!dx && !want_dw) return;
  std::vector<Tensor> dx_pieces(s.shards.size()), dw_pieces(p.batched ? s.shards.size() : 0);
  for (size_t i = 0; i < s.shards.size(); ++i) {
    ShardForward<Forward>& sh = s.shards[i];
    const Tensor& w_i = p.batched ? sh.w : s.w;
    Tensor* dx_i = dx ? &dx_pieces[i] : nullptr;
    Tensor dw_i;
    if (b[i].local) {
      local_backward(p, sh.x, w_i, b[i].dy, dx_i, want_dw ? &dw_i : nullptr);
    } else {
      if (dx) {
        clock.phase(OffloadPhase::kWait);
        OffloadEngine::InFlight& op = *b[i].dx_op;
        // For patch mode's dP', the largest result of all, the check's projections come from
        // the col2im kernel that decrypts it.
        std::optional<Tensor> d = engine.receive_decrypted(
            op, layer, "backward-data product",
            [&](const BlindedTensor& g, const crypto::RowProjection* projection) {
              clock.phase(OffloadPhase::kUnblind);
              return decrypt_input_grad(*sh.fw, g, projection);
            });
        clock.phase(OffloadPhase::kUnblind);
        if (d) {
          engine.stats().add(layer, b[i].sent_dx, op.result_bytes, b[i].sent_dx + op.result_bytes);
          *dx_i = std::move(*d);
        } else {
          local_backward(p, sh.x, w_i, b[i].dy, dx_i, nullptr);
        }
      }
      if (want_dw) {
        clock.phase(OffloadPhase::kWait);
        auto g = engine.receive_verified(*b[i].dw_op, layer, "backward-weights product");
        clock.phase(OffloadPhase::kUnblind);
        if (g) {
          engine.stats().add(layer, b[i].sent_dw, g->bytes(), b[i].sent_dw + g->bytes());
          dw_i = sh.fw->decrypt_dw(*g);
        } else {
          local_backward(p, sh.x, w_i, b[i].dy, nullptr, &dw_i);
        }
      }
    }
    if (want_dw && p.batched) {
      dw_pieces[i] = std::move(dw_i);  // each shard's own entries of dB
    } else if (want_dw) {
      if (i == 0)
        *dw = std::move(dw_i);
      else
        add_into(*dw, dw_i);
    }
  }
  if (dx) *dx = whole ? std::move(dx_pieces.front()) : concat_rows(dx_pieces);
  if (want_dw && p.batched) *dw = whole ? std::move(dw_pieces.front()) : concat_rows(dw_pieces);
}

template <class Forward>
SavedOffload<Forward>* saved_as(std::unique_ptr<nn::SavedProduct>* saved) {
  return saved ? dynamic_cast<SavedOffload<Forward>*>(saved->get()) : nullptr;
}

}  // namespace

Tensor TempoCompute::matmul(const Tensor& x, const Tensor& w,
                            std::unique_ptr<nn::SavedProduct>* saved) {
  if (engine_.must_run_locally()) return nn::plain_compute().matmul(x, w, saved);
  ProductPlan plan;
  plan.dx_trans_b = true;  // dX' = dY'1 · W'ᵀ
  plan.dw_trans_a = true;  // dW' = X'ᵀ · dY'2
  return offload_forward<crypto::MatmulForward>(
      engine_, layer_, x, w,
      [&](const Tensor& rows, const Tensor&, const crypto::MatmulObfuscator::ProjectX& project_x) {
        return engine_.matmul().encrypt(rows, w, project_x);
      },
      plan, saved);
}

void TempoCompute::matmul_backward(const Tensor& dy, std::unique_ptr<nn::SavedProduct>* saved,
                                   Tensor* dx, Tensor* dw) {
  auto* s = saved_as<crypto::MatmulForward>(saved);
  if (!s) {
    // The forward ran in the TEE (no worker, or all quarantined): so does the backward.
    engine_.integrity().computed_locally();
    return nn::plain_compute().matmul_backward(dy, saved, dx, dw);
  }
  offload_backward(engine_, layer_, dy, *s, dx, dw);
  saved->reset();
}

Tensor TempoCompute::conv2d(const Tensor& x, const Tensor& w, const nn::ConvGeometry& g,
                            std::unique_ptr<nn::SavedProduct>* saved) {
  if (engine_.must_run_locally()) return nn::plain_compute().conv2d(x, w, g, saved);
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
  return offload_forward<crypto::PatchConvForward>(
      engine_, layer_, x, w,
      [&](const Tensor& rows, const Tensor&) { return engine_.patch_conv().encrypt(rows, w, g); },
      plan, saved);
}

Tensor TempoCompute::channel_conv2d(const Tensor& x, const Tensor& w, const nn::ConvGeometry& g,
                                    std::unique_ptr<nn::SavedProduct>* saved) {
  ProductPlan plan;
  plan.forward_op = Op::kConvForward;
  plan.dx_op = Op::kConvBackwardData;
  plan.dw_op = Op::kConvBackwardWeights;
  plan.conv = {g.stride_h, g.stride_w, g.pad_h, g.pad_w};
  plan.dw_shape = w.shape();
  plan.is_conv = true;
  plan.geometry = g;
  return offload_forward<crypto::ConvChannelForward>(
      engine_, layer_, x, w,
      [&](const Tensor& rows, const Tensor&) { return engine_.channel_conv().encrypt(rows, w); },
      plan, saved);
}

void TempoCompute::conv2d_backward(const Tensor& dy, std::unique_ptr<nn::SavedProduct>* saved,
                                   Tensor* dx, Tensor* dw) {
  if (auto* s = saved_as<crypto::PatchConvForward>(saved)) {
    offload_backward(engine_, layer_, dy, *s, dx, dw);
  } else if (auto* c = saved_as<crypto::ConvChannelForward>(saved)) {
    offload_backward(engine_, layer_, dy, *c, dx, dw);
  } else {
    // The forward ran in the TEE (no worker, or all quarantined): so does the backward.
    engine_.integrity().computed_locally();
    return nn::plain_compute().conv2d_backward(dy, saved, dx, dw);
  }
  saved->reset();
}

Tensor TempoCompute::batched_matmul_forward(const Tensor& a, const Tensor& b, bool trans_b,
                                            std::unique_ptr<nn::SavedProduct>* saved) {
  if (engine_.must_run_locally())
    return nn::plain_compute().batched_matmul_forward(a, b, trans_b, saved);
  // The key shift of Linear (PROTOCOL.md section 4), per entry: the worker keeps A' and B', and
  // the backward sends only the twice-blinded output gradient.
  ProductPlan plan;
  plan.forward_op = plan.dx_op = plan.dw_op = Op::kBatchedMatMul;
  plan.batched = true;
  plan.fwd_trans_b = trans_b;
  plan.dx_trans_b = !trans_b;  // dA' = dC'1·op(B')ᵀ
  plan.dw_trans_a = true;      // dB' = A'ᵀ·dC'2, or (trans_b) dC'2ᵀ·A'
  plan.dw_cached_x_is_b = trans_b;
  return offload_forward<crypto::BatchedMatmulForward>(
      engine_, layer_, a, b,
      [&](const Tensor& a_rows, const Tensor& b_rows, const crypto::RowProjection* project_b,
          const crypto::BatchedMatmulObfuscator::ProjectA& project_a) {
        return engine_.batched_matmul().encrypt_forward(a_rows, b_rows, trans_b, project_b,
                                                        project_a);
      },
      plan, saved);
}

void TempoCompute::batched_matmul_backward(const Tensor& dc,
                                           std::unique_ptr<nn::SavedProduct>* saved, Tensor* da,
                                           Tensor* db) {
  auto* s = saved_as<crypto::BatchedMatmulForward>(saved);
  if (!s) {
    // The forward ran in the TEE (no worker, or all quarantined): so does the backward.
    engine_.integrity().computed_locally();
    return nn::plain_compute().batched_matmul_backward(dc, saved, da, db);
  }
  offload_backward(engine_, layer_, dc, *s, da, db);
  saved->reset();
}

Tensor TempoCompute::batched_matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
  if (engine_.must_run_locally()) return nn::plain_compute().batched_matmul(a, b, trans_a, trans_b);
  PhaseClock clock(engine_.stats(), OffloadPhase::kBlind);
  std::vector<WorkerPool::Shard> shards = engine_.plan_shards(a.dim(0));
  if (shards.empty()) shards.push_back({0, 0, a.dim(0)});
  const bool whole = shards.size() == 1;
  std::vector<crypto::BatchedMatmulProduct> products;
  std::vector<OffloadEngine::InFlight> ops;
  std::vector<Tensor> a_rows, b_rows;
  products.reserve(shards.size());
  for (const WorkerPool::Shard& sh : shards) {
    a_rows.push_back(whole ? a : rows_of(a, sh.begin, sh.end));
    b_rows.push_back(whole ? b : rows_of(b, sh.begin, sh.end));
    products.push_back(
        engine_.batched_matmul().encrypt(a_rows.back(), b_rows.back(), trans_a, trans_b));
    const crypto::BatchedMatmulProduct& product = products.back();
    Request r;
    r.op = Op::kBatchedMatMul;
    r.trans_a = trans_a;
    r.trans_b = trans_b;
    r.a = Operand::inline_tensor(product.a());
    r.b = Operand::inline_tensor(product.b());
    ops.push_back(
        submit_product(engine_, clock, std::move(r), product.a(), product.b(), sh.worker));
  }
  std::vector<Tensor> pieces(shards.size());
  for (size_t i = 0; i < shards.size(); ++i) {
    const int64_t sent = products[i].a().bytes() + products[i].b().bytes();
    clock.phase(OffloadPhase::kWait);
    std::optional<BlindedTensor> c = engine_.receive_verified(ops[i], layer_, "attention product");
    clock.phase(OffloadPhase::kUnblind);
    if (!c) {
      engine_.stats().add(layer_, sent, 0, sent);
      pieces[i] = nn::plain_compute().batched_matmul(a_rows[i], b_rows[i], trans_a, trans_b);
      continue;
    }
    engine_.stats().add(layer_, sent, c->bytes(), sent + c->bytes());
    pieces[i] = products[i].decrypt(*c);
  }
  return whole ? std::move(pieces.front()) : concat_rows(pieces);
}

}  // namespace tempo::offload
