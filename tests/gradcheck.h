// Finite-difference gradient checks for modules (test helper).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>

#include "master/core/random.h"
#include "master/core/tensor.h"
#include "master/nn/module.h"

namespace tempo::testing {

inline Tensor random_tensor(const Shape& s, Rng& rng, float scale = 1.0f) {
  Tensor t(s);
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = static_cast<float>(rng.normal()) * scale;
  return t;
}

/// Max over elements of |a-b| / (atol + rtol·|b|); <= 1 means "close".
inline double closeness(const Tensor& a, const Tensor& b, double atol, double rtol) {
  EXPECT_EQ(a.shape(), b.shape());
  double worst = 0;
  for (int64_t i = 0; i < std::min(a.numel(), b.numel()); ++i) {
    const double d = std::abs(double(a[i]) - double(b[i]));
    worst = std::max(worst, d / (atol + rtol * std::abs(double(b[i]))));
    if (std::isnan(a[i]) || std::isnan(b[i])) return INFINITY;
  }
  return worst;
}

struct GradCheckOptions {
  double eps = 1e-2;      ///< central-difference step (fp32 forward)
  double atol = 2e-3;     ///< absolute tolerance, relative to the largest gradient entry
  double rtol = 2e-2;
  int max_coords = 48;    ///< coordinates probed per tensor (random subset)
  uint64_t seed = 7;
};

/// Checks dL/dx and dL/dθ of `m` at input `x` for L = Σ y·r with a fixed random r.
/// `forward` must be deterministic (e.g. dropout with a re-seeded mask), and the module is run
/// in whatever train/eval mode it is in.
inline void expect_gradients_match(nn::Module& m, const Tensor& x, GradCheckOptions o = {},
                                   const std::function<void()>& before_forward = {}) {
  Rng rng(o.seed);
  auto run = [&](const Tensor& in) {
    if (before_forward) before_forward();
    return m.forward(in);
  };
  Tensor y = run(x);
  Tensor r = random_tensor(y.shape(), rng);
  auto loss = [&](const Tensor& in) {
    Tensor out = run(in);
    double s = 0;
    for (int64_t i = 0; i < out.numel(); ++i) s += double(out[i]) * double(r[i]);
    return s;
  };
  nn::zero_grad(m);
  run(x);
  Tensor dx = m.backward(r);
  ASSERT_EQ(dx.shape(), x.shape()) << m.type() << ": dx shape";

  auto probe = [&](Tensor& target, const Tensor& analytic, const std::string& what,
                   const std::function<double()>& eval) {
    double scale = 0;
    for (int64_t i = 0; i < analytic.numel(); ++i)
      scale = std::max(scale, double(std::abs(analytic[i])));
    const int64_t n = target.numel();
    const int coords = static_cast<int>(std::min<int64_t>(n, o.max_coords));
    for (int c = 0; c < coords; ++c) {
      const int64_t i = coords == n ? c : static_cast<int64_t>(rng.below(static_cast<uint64_t>(n)));
      const float saved = target[i];
      target[i] = saved + static_cast<float>(o.eps);
      const double up = eval();
      target[i] = saved - static_cast<float>(o.eps);
      const double down = eval();
      target[i] = saved;
      const double numeric = (up - down) / (2 * o.eps);
      const double a = analytic[i];
      EXPECT_LE(std::abs(numeric - a), o.atol * std::max(1.0, scale) + o.rtol * std::abs(numeric))
          << m.type() << " " << what << "[" << i << "]: numeric " << numeric << " analytic " << a;
    }
  };
  Tensor xin = x.clone();
  probe(xin, dx, "dx", [&] { return loss(xin); });
  for (auto& np : nn::named_parameters(m)) {
    Tensor grad = np.param->grad.clone();
    probe(np.param->value, grad, np.path, [&] { return loss(xin); });
  }
}

}  // namespace tempo::testing
