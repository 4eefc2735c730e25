// Helpers shared by the crypto tests: the test plays the untrusted worker on blinded operands.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "common/blinded_tensor.h"
#include "master/core/blas.h"
#include "master/core/random.h"
#include "master/core/tensor.h"

namespace tempo::testing {

/// A plaintext copy of a blinded tensor (the test is trusted and may look at blinded data).
inline Tensor to_tensor(const BlindedTensor& b) {
  Tensor t(b.shape());
  std::memcpy(t.data(), b.data(), static_cast<size_t>(b.bytes()));
  return t;
}

/// The worker's product: op(A)·op(B) on blinded matrices, with OpenBLAS.
inline BlindedTensor worker_gemm(const BlindedTensor& a, const BlindedTensor& b, bool ta, bool tb) {
  const int64_t m = ta ? a.dim(1) : a.dim(0), k = ta ? a.dim(0) : a.dim(1);
  const int64_t n = tb ? b.dim(0) : b.dim(1);
  BlindedTensor c = BlindedTensor::allocate({m, n});
  blas::gemm(ta, tb, m, n, k, 1.0f, a.data(), b.data(), 0.0f, c.mutable_data());
  return c;
}

/// Plain op(A)·op(B) of plaintext matrices.
inline Tensor plain_gemm(const Tensor& a, const Tensor& b, bool ta = false, bool tb = false) {
  const int64_t m = ta ? a.dim(1) : a.dim(0), k = ta ? a.dim(0) : a.dim(1);
  const int64_t n = tb ? b.dim(0) : b.dim(1);
  Tensor c({m, n});
  blas::gemm(ta, tb, m, n, k, 1.0f, a.data(), b.data(), 0.0f, c.data());
  return c;
}

inline Tensor abs_of(const Tensor& t) {
  Tensor a(t.shape());
  for (int64_t i = 0; i < t.numel(); ++i) a[i] = std::abs(t[i]);
  return a;
}

/// Asserts |got - want| <= 2·gamma_terms·bound + tiny elementwise, where bound = |A|·|B| (the
/// product of absolute values) and gamma_n = n·u/(1 - n·u), u = 2^-24: the rigorous a-priori
/// error bound of any summation order, applied to both sides being compared.
inline void expect_within_fp_bound(const Tensor& got, const Tensor& want, const Tensor& bound,
                                   int64_t terms, double extra_rel = 0.0) {
  ASSERT_EQ(got.shape(), want.shape());
  const double u = std::ldexp(1.0, -24);
  const double gamma = terms * u / (1.0 - terms * u);
  int64_t bad = 0;
  for (int64_t i = 0; i < got.numel(); ++i) {
    const double tol = (2.0 * gamma + extra_rel) * bound[i] + 1e-30;
    if (!(std::abs(double(got[i]) - double(want[i])) <= tol)) {
      if (bad++ < 5)
        ADD_FAILURE() << "element " << i << ": got " << got[i] << ", want " << want[i]
                      << ", tolerance " << tol;
    }
  }
  EXPECT_EQ(bad, 0);
}

inline Tensor random_matrix(int64_t r, int64_t c, Rng& rng) {
  Tensor t({r, c});
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = static_cast<float>(rng.normal());
  return t;
}

}  // namespace tempo::testing
