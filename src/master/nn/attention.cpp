#include "master/nn/attention.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "master/nn/vec_math.h"

namespace tempo::nn {

namespace {
constexpr int64_t kParallelMin = 1 << 15;  // elements; below it one thread is faster

/// Geometry of one forward: batch, tokens, heads, head dim.
struct Dims {
  int64_t b, t, h, hd;
  int64_t d() const { return h * hd; }
};

/// Splits the fused qkv [B, T, 3D] (features [q | k | v], each head-major as timm's
/// reshape(B, T, 3, h, hd)) into q, k, v [B·h, T, hd]; q is multiplied by `q_scale`.
void split_qkv(const Tensor& qkv, const Dims& s, float q_scale, Tensor& q, Tensor& k, Tensor& v) {
  const int64_t d = s.d();
  const float* src = qkv.data();
  float* qd = q.data();
  float* kd = k.data();
  float* vd = v.data();
#pragma omp parallel for collapse(2) schedule(static) if (qkv.numel() > kParallelMin)
  for (int64_t b = 0; b < s.b; ++b)
    for (int64_t t = 0; t < s.t; ++t) {
      const float* row = src + (b * s.t + t) * 3 * d;
      for (int64_t h = 0; h < s.h; ++h) {
        const int64_t dst = ((b * s.h + h) * s.t + t) * s.hd;
        const float* qr = row + h * s.hd;
        for (int64_t j = 0; j < s.hd; ++j) qd[dst + j] = qr[j] * q_scale;
        std::copy(qr + d, qr + d + s.hd, kd + dst);
        std::copy(qr + 2 * d, qr + 2 * d + s.hd, vd + dst);
      }
    }
}

/// Inverse of split_qkv for gradients: dq·q_scale, dk, dv [B·h, T, hd] -> dqkv [B, T, 3D].
void merge_qkv(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Dims& s, float q_scale,
               Tensor& dqkv) {
  const int64_t d = s.d();
  float* dst = dqkv.data();
#pragma omp parallel for collapse(2) schedule(static) if (dqkv.numel() > kParallelMin)
  for (int64_t b = 0; b < s.b; ++b)
    for (int64_t t = 0; t < s.t; ++t) {
      float* row = dst + (b * s.t + t) * 3 * d;
      for (int64_t h = 0; h < s.h; ++h) {
        const int64_t src = ((b * s.h + h) * s.t + t) * s.hd;
        float* qr = row + h * s.hd;
        for (int64_t j = 0; j < s.hd; ++j) qr[j] = dq[src + j] * q_scale;
        std::copy(dk.data() + src, dk.data() + src + s.hd, qr + d);
        std::copy(dv.data() + src, dv.data() + src + s.hd, qr + 2 * d);
      }
    }
}

/// [B·h, T, hd] -> [B, T, h·hd] (heads side by side) when `to_tokens`, else the reverse.
void permute_heads(const Tensor& in, const Dims& s, bool to_tokens, Tensor& out) {
  const float* src = in.data();
  float* dst = out.data();
#pragma omp parallel for collapse(2) schedule(static) if (in.numel() > kParallelMin)
  for (int64_t b = 0; b < s.b; ++b)
    for (int64_t t = 0; t < s.t; ++t)
      for (int64_t h = 0; h < s.h; ++h) {
        const int64_t head = ((b * s.h + h) * s.t + t) * s.hd;
        const int64_t token = (b * s.t + t) * s.d() + h * s.hd;
        if (to_tokens)
          std::copy(src + head, src + head + s.hd, dst + token);
        else
          std::copy(src + token, src + token + s.hd, dst + head);
      }
}

/// Row-wise softmax over the last dimension, in place.
void softmax_rows(Tensor& a) {
  const int64_t n = a.dim(a.rank() - 1), rows = a.numel() / n;
  float* ad = a.data();
#pragma omp parallel for schedule(static) if (a.numel() > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    float* row = ad + r * n;
    float mx = row[0];
    for (int64_t j = 1; j < n; ++j) mx = row[j] > mx ? row[j] : mx;
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < n; ++j) {
      row[j] = vec::exp(row[j] - mx);
      sum += row[j];
    }
    const float inv = 1.0f / sum;
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) row[j] *= inv;
  }
}

/// dS = A ⊙ (dA - rowsum(dA ⊙ A)): the softmax Jacobian applied to dA, in place in dA.
void softmax_backward_rows(const Tensor& a, Tensor& da) {
  const int64_t n = a.dim(a.rank() - 1), rows = a.numel() / n;
  const float* ad = a.data();
  float* gd = da.data();
#pragma omp parallel for schedule(static) if (a.numel() > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const float* ar = ad + r * n;
    float* gr = gd + r * n;
    float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
    for (int64_t j = 0; j < n; ++j) dot += ar[j] * gr[j];
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) gr[j] = ar[j] * (gr[j] - dot);
  }
}
}  // namespace

MultiHeadSelfAttention::MultiHeadSelfAttention(int64_t dim, int64_t heads, Rng& rng)
    : dim_(dim), heads_(heads) {
  if (dim <= 0 || heads <= 0 || dim % heads != 0)
    throw std::invalid_argument("MultiHeadSelfAttention: heads (" + std::to_string(heads) +
                                ") must be positive and divide dim (" + std::to_string(dim) + ")");
  qkv_ = std::make_unique<Linear>(dim, 3 * dim, rng);
  proj_ = std::make_unique<Linear>(dim, dim, rng);
}

void MultiHeadSelfAttention::children(std::vector<std::pair<std::string, Module*>>& out) {
  out.emplace_back("qkv", qkv_.get());
  out.emplace_back("proj", proj_.get());
}

Tensor MultiHeadSelfAttention::forward(const Tensor& x) {
  if (x.rank() != 3 || x.dim(2) != dim_)
    throw std::invalid_argument("MultiHeadSelfAttention(dim " + std::to_string(dim_) +
                                "): input must be [B, T, " + std::to_string(dim_) + "], got " +
                                x.shape().to_string());
  const Dims s{x.dim(0), x.dim(1), heads_, dim_ / heads_};
  if (s.t == 0) throw std::invalid_argument("MultiHeadSelfAttention: no tokens");
  const float scale = 1.0f / std::sqrt(static_cast<float>(s.hd));
  Tensor qkv = qkv_->forward(x);
  Tensor q({s.b * s.h, s.t, s.hd}), k(q.shape()), v(q.shape());
  split_qkv(qkv, s, scale, q, k, v);
  qkv = Tensor();  // release before the T×T scores are allocated
  std::unique_ptr<SavedProduct>* keep_scores = training_ ? &scores_ : nullptr;
  std::unique_ptr<SavedProduct>* keep_values = training_ ? &values_ : nullptr;
  Tensor attn = compute_->batched_matmul_forward(q, k, /*trans_b=*/true, keep_scores);
  softmax_rows(attn);  // [B·h, T, T] = softmax((q·scale)·kᵀ)
  Tensor o = compute_->batched_matmul_forward(attn, v, /*trans_b=*/false, keep_values);
  Tensor merged({s.b, s.t, dim_});
  permute_heads(o, s, /*to_tokens=*/true, merged);
  if (training_) {
    attn_ = attn;
    input_shape_ = x.shape();
  } else {
    attn_ = Tensor();
    scores_.reset();
    values_.reset();
  }
  return proj_->forward(merged);
}

Tensor MultiHeadSelfAttention::backward(const Tensor& dy) {
  if (attn_.empty())
    throw std::logic_error("MultiHeadSelfAttention: backward without a training forward");
  dy.expect_shape(input_shape_, "MultiHeadSelfAttention backward dY");
  const Dims s{input_shape_[0], input_shape_[1], heads_, dim_ / heads_};
  const float scale = 1.0f / std::sqrt(static_cast<float>(s.hd));
  Tensor dmerged = proj_->backward(dy);
  Tensor dout({s.b * s.h, s.t, s.hd});
  permute_heads(dmerged, s, /*to_tokens=*/false, dout);
  dmerged = Tensor();
  Tensor dattn, dv, dq, dk;
  compute_->batched_matmul_backward(dout, &values_, &dattn, &dv);  // dA = dO·Vᵀ, dV = Aᵀ·dO
  softmax_backward_rows(attn_, dattn);                             // now dS
  compute_->batched_matmul_backward(dattn, &scores_, &dq, &dk);  // d(q·scale) = dS·K, dK = dSᵀ·q
  attn_ = Tensor();
  dattn = Tensor();
  Tensor dqkv({s.b, s.t, 3 * dim_});
  merge_qkv(dq, dk, dv, s, scale, dqkv);
  return qkv_->backward(dqkv);
}

}  // namespace tempo::nn
