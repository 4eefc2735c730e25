#include "master/nn/compute.h"

#include <memory>
#include <stdexcept>

namespace tempo::nn {

namespace {
struct SavedBatchedOperands final : SavedProduct {
  Tensor a, b;
  bool trans_b = false;
};
}  // namespace

Tensor Compute::batched_matmul_forward(const Tensor& a, const Tensor& b, bool trans_b,
                                       std::unique_ptr<SavedProduct>* saved) {
  Tensor c = batched_matmul(a, b, false, trans_b);
  if (saved) {
    auto s = std::make_unique<SavedBatchedOperands>();
    s->a = a;
    s->b = b;
    s->trans_b = trans_b;
    *saved = std::move(s);
  }
  return c;
}

void Compute::batched_matmul_backward(const Tensor& dc, std::unique_ptr<SavedProduct>* saved,
                                      Tensor* da, Tensor* db) {
  auto* s = saved ? dynamic_cast<SavedBatchedOperands*>(saved->get()) : nullptr;
  if (!s) throw std::logic_error("batched_matmul_backward without a saved forward");
  if (da) *da = batched_matmul(dc, s->b, false, !s->trans_b);  // dC·op(B)ᵀ
  if (db)
    *db = s->trans_b ? batched_matmul(dc, s->a, true, false)   // (Aᵀ·dC)ᵀ = dCᵀ·A
                     : batched_matmul(s->a, dc, true, false);  // Aᵀ·dC
  saved->reset();
}

}  // namespace tempo::nn
