#include "master/nn/plain_compute.h"

#include <stdexcept>

#include "master/core/blas.h"

namespace tempo::nn {

namespace {
struct SavedOperands final : SavedProduct {
  Tensor x, w;
};
}  // namespace

Compute& plain_compute() {
  static PlainCompute instance;
  return instance;
}

Tensor PlainCompute::matmul(const Tensor& x, const Tensor& w,
                            std::unique_ptr<SavedProduct>* saved) {
  if (x.rank() != 2 || w.rank() != 2 || x.dim(1) != w.dim(0))
    throw std::invalid_argument("matmul: shapes " + x.shape().to_string() + " and " +
                                w.shape().to_string() + " do not chain");
  const int64_t m = x.dim(0), k = x.dim(1), n = w.dim(1);
  Tensor y({m, n});
  blas::gemm(false, false, m, n, k, 1.0f, x.data(), w.data(), 0.0f, y.data());
  if (saved) {
    auto s = std::make_unique<SavedOperands>();
    s->x = x;
    s->w = w;
    *saved = std::move(s);
  }
  return y;
}

void PlainCompute::matmul_backward(const Tensor& dy, std::unique_ptr<SavedProduct>* saved,
                                   Tensor* dx, Tensor* dw) {
  auto* s = saved ? dynamic_cast<SavedOperands*>(saved->get()) : nullptr;
  if (!s) throw std::logic_error("matmul_backward without a saved forward");
  const int64_t m = s->x.dim(0), k = s->x.dim(1), n = s->w.dim(1);
  dy.expect_shape({m, n}, "matmul_backward dY");
  if (dx) {
    *dx = Tensor({m, k});
    blas::gemm(false, true, m, k, n, 1.0f, dy.data(), s->w.data(), 0.0f, dx->data());
  }
  if (dw) {
    *dw = Tensor({k, n});
    blas::gemm(true, false, k, n, m, 1.0f, s->x.data(), dy.data(), 0.0f, dw->data());
  }
  saved->reset();
}

Tensor PlainCompute::batched_matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
  if (a.rank() != 3 || b.rank() != 3 || a.dim(0) != b.dim(0))
    throw std::invalid_argument("batched_matmul: need rank-3 operands with equal batch, got " +
                                a.shape().to_string() + " and " + b.shape().to_string());
  const int64_t batch = a.dim(0);
  const int64_t m = trans_a ? a.dim(2) : a.dim(1), k = trans_a ? a.dim(1) : a.dim(2);
  const int64_t kb = trans_b ? b.dim(2) : b.dim(1), n = trans_b ? b.dim(1) : b.dim(2);
  if (k != kb)
    throw std::invalid_argument("batched_matmul: inner dimensions differ: " +
                                a.shape().to_string() + " and " + b.shape().to_string());
  Tensor c({batch, m, n});
  const int64_t sa = a.dim(1) * a.dim(2), sb = b.dim(1) * b.dim(2), sc = m * n;
  // Attention has many small products (B·heads of T×T×hd): one single-threaded GEMM per thread
  // beats threading inside each small GEMM. Only a few large products (batch below the thread
  // count) are left to OpenBLAS's own threads, and tiny batches to one thread (fork/join costs).
  const int64_t work = m * n * k;
  const bool over_batch =
      batch > 1 && batch * work >= (1 << 16) && (batch >= blas::num_threads() || work < (1 << 21));
  const auto product = [&](int64_t i) {
    blas::gemm(trans_a, trans_b, m, n, k, 1.0f, a.data() + i * sa, b.data() + i * sb, 0.0f,
               c.data() + i * sc);
  };
  // Not `omp parallel for if (over_batch)`: OpenBLAS threads inside an inactive region form a
  // nested team, which libgomp creates afresh for every GEMM.
  if (over_batch) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < batch; ++i) product(i);
  } else {
    for (int64_t i = 0; i < batch; ++i) product(i);
  }
  return c;
}

}  // namespace tempo::nn
