#include "master/integrity/product_check.h"

#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <utility>

#include "master/core/thread_team.h"
#include "master/crypto/csprng.h"
#include "master/integrity/projection.h"
#include "master/integrity/random_signs.h"

namespace tempo::integrity {

namespace {

struct Worst {
  double ratio = 0.0, z = 0.0, tau = 0.0;
  int64_t row = -1;
  int round = 0;
};

}  // namespace

ProductCheck::ProductCheck(const BlindedTensor& a, const BlindedTensor& b, bool trans_a,
                           bool trans_b, int rounds, Precision precision,
                           const OperandProjection& project_a, const OperandProjection& project_b,
                           std::vector<double> signs, double projection_error)
    : rounds_(rounds), precision_(precision), signs_(std::move(signs)) {
  if (rounds < 1) throw std::invalid_argument("ProductCheck: rounds must be >= 1");
  if (!(projection_error >= 0.0 && projection_error < 0.5))
    throw std::invalid_argument("ProductCheck: projection error must be in [0, 0.5)");
  const int rank = a.rank();
  if ((rank != 2 && rank != 3) || b.rank() != rank || (rank == 3 && a.dim(0) != b.dim(0)))
    throw std::invalid_argument("ProductCheck: operands " + a.shape().to_string() + " and " +
                                b.shape().to_string() + " are not a (batched) product");
  const int o = rank - 2;
  batch_ = rank == 3 ? a.dim(0) : 1;
  const int64_t a_rows = a.dim(o), a_cols = a.dim(o + 1);
  const int64_t b_rows = b.dim(o), b_cols = b.dim(o + 1);
  m_ = trans_a ? a_cols : a_rows;
  k_ = trans_a ? a_rows : a_cols;
  n_ = trans_b ? b_rows : b_cols;
  if ((trans_b ? b_cols : b_rows) != k_)
    throw std::invalid_argument("ProductCheck: inner dimensions of " + a.shape().to_string() +
                                " and " + b.shape().to_string() + " differ");
  expected_ = rank == 3 ? Shape{batch_, m_, n_} : Shape{m_, n_};

  const int t = rounds_;
  if (signs_.empty()) {
    crypto::Csprng rng;
    signs_ = random_signs(rng, batch_ * t * n_);
  } else if (static_cast<int64_t>(signs_.size()) != batch_ * t * n_) {
    throw std::invalid_argument("ProductCheck: " + std::to_string(signs_.size()) +
                                " preset vector entries for " + std::to_string(batch_ * t * n_));
  }
  abv_.resize(static_cast<size_t>(batch_ * t * m_));
  ab_abs_.resize(static_cast<size_t>(batch_ * m_));
  // op(B)·v [batch][t][k] and |op(B)|·1 [batch][k]: A's side needs them, entry by entry.
  UninitializedVector<double> bv(static_cast<size_t>(batch_ * t * k_)),
      b_abs(static_cast<size_t>(batch_ * k_));
  // The caller's projections stand in for the passes over B and A, all entries at once; A's
  // is asked once B's side is known, by either means.
  // (B's replay is asked for |op(B)|·1 as weights of ones, built only for it.)
  const bool b_given =
      project_b &&
      project_b(signs_.data(), std::vector<double>(static_cast<size_t>(batch_ * n_), 1.0).data(), t,
                bv.data(), b_abs.data());
  const int64_t sa = a_rows * a_cols, sb = b_rows * b_cols;
  // Threads over the batch only for large batched products (see kParallelElements).
  const bool over_batch =
      batch_ > 1 && batch_ * (a_rows * a_cols + b_rows * b_cols) >= kParallelElements;
  auto project_entries = [&](bool b_side, bool a_side) {
    run_on_team(over_batch, [&](int64_t first, int64_t step) {
      for (int64_t e = first; e < batch_; e += step) {
        double* bv_e = bv.data() + e * t * k_;
        double* b_abs_e = b_abs.data() + e * k_;
        if (b_side)
          project_signs(b.data() + e * sb, b_rows, b_cols, trans_b, signs_.data() + e * t * n_, t,
                        bv_e, b_abs_e, !over_batch);
        if (a_side)
          project(a.data() + e * sa, a_rows, a_cols, trans_a, bv_e, b_abs_e, t,
                  abv_.data() + e * t * m_, ab_abs_.data() + e * m_, !over_batch);
      }
    });
  };
  if (b_given) projection_error_ = projection_error;
  if (!project_a) {  // one pass over the entries for both sides
    project_entries(!b_given, true);
    return;
  }
  if (!b_given) project_entries(true, false);
  if (project_a(bv.data(), b_abs.data(), t, abv_.data(), ab_abs_.data()))
    projection_error_ = projection_error;
  else
    project_entries(false, true);
}

CheckOutcome ProductCheck::check_shape(const BlindedTensor& c) const {
  CheckOutcome out;
  if (c.shape() != expected_ || c.numel() != expected_.numel()) {
    out.passed = false;
    out.worst_ratio = INFINITY;
    out.reason =
        "result has shape " + c.shape().to_string() + " instead of " + expected_.to_string();
  }
  return out;
}

CheckOutcome ProductCheck::verify(const BlindedTensor& c) const {
  CheckOutcome shape = check_shape(c);
  if (!shape.passed) return shape;
  return verify_entries(&c, nullptr, nullptr);
}

CheckOutcome ProductCheck::verify_projected(const double* cv, const double* c_abs) const {
  return verify_entries(nullptr, cv, c_abs);
}

CheckOutcome ProductCheck::verify_entries(const BlindedTensor* c, const double* c_projected,
                                          const double* c_projected_abs) const {
  CheckOutcome out;
  const int t = rounds_;
  const int64_t m = m_, n = n_;
  const double g = dot_relative_bound(k_, precision_);
  const double floor = static_cast<double>(n) * dot_absolute_bound(k_);
  // The check's own rounding: C·v and op(B)·v (rows of n) may be summed in fp32 lanes
  // (projection_relative_bound); the sums with op(A) and the comparison are in double.
  const double p = projection_relative_bound(n);
  const double upper = 1.0 / (1.0 - p);  // computed absolute sums -> upper bounds
  // Projections taken from what an operand was blinded from: their values within e·|A||B|1 of
  // the operand's, their absolute sums within a factor 1 - e of it.
  const double given = projection_error_;
  const double ab_upper = upper / (1.0 - given);
  const double check = 2.0 * gamma(n + k_ + 2, kCheckRoundoff);
  const std::vector<double> ones(c ? static_cast<size_t>(n) : 0, 1.0);  // only to read C here
  std::vector<Worst> worst(static_cast<size_t>(batch_));
  const bool over_batch = batch_ > 1 && batch_ * m * n >= kParallelElements;
  auto check_entries = [&](int64_t first, int64_t step) {
    UninitializedVector<double> buffer(c ? static_cast<size_t>(t * m) : 0);
    UninitializedVector<double> buffer_abs(c ? static_cast<size_t>(m) : 0);
    for (int64_t e = first; e < batch_; e += step) {
      const double* cv = c_projected ? c_projected + e * t * m : nullptr;
      const double* c_abs = c_projected_abs ? c_projected_abs + e * m : nullptr;
      if (c) {
        project(c->data() + e * m * n, m, n, false, signs_.data() + e * t * n, ones.data(), t,
                buffer.data(), buffer_abs.data(), !over_batch);
        cv = buffer.data();
        c_abs = buffer_abs.data();
      }
      const double* abv = abv_.data() + e * t * m;
      const double* ab_abs = ab_abs_.data() + e * m;
      Worst w;
      for (int64_t i = 0; i < m; ++i) {
        const double ab = ab_upper * ab_abs[i], cm = upper * c_abs[i];
        const double tau = g * ab + floor + p * (ab + cm) + check * (cm + ab) + given * ab;
        for (int r = 0; r < t; ++r) {
          const double z = std::fabs(cv[r * m + i] - abv[r * m + i]);
          double ratio;
          // A non-finite entry in C (or an overflow) is never accepted, nor anything against
          // an infinite tolerance (which would accept everything).
          if (!std::isfinite(c_abs[i]) || !std::isfinite(z) || !std::isfinite(tau))
            ratio = INFINITY;
          else if (tau > 0.0)
            ratio = z / tau;
          else
            ratio = z == 0.0 ? 0.0 : INFINITY;
          if (w.row < 0 || ratio > w.ratio) w = {ratio, z, tau, i, r};
        }
      }
      worst[static_cast<size_t>(e)] = w;
    }
  };
  run_on_team(over_batch, check_entries);
  int64_t we = 0;
  for (int64_t e = 1; e < batch_; ++e)
    if (worst[static_cast<size_t>(e)].ratio > worst[static_cast<size_t>(we)].ratio) we = e;
  const Worst& w = worst[static_cast<size_t>(we)];
  out.worst_ratio = m > 0 ? w.ratio : 0.0;
  out.passed = out.worst_ratio <= 1.0;
  if (!out.passed) {
    char buf[200];
    std::snprintf(buf, sizeof buf,
                  "row %lld, round %d: |C·v - A·(B·v)| = %.3g, tolerance %.3g (%.3g x)",
                  static_cast<long long>(w.row), w.round + 1, w.z, w.tau, w.ratio);
    out.reason = batch_ > 1 ? "batch entry " + std::to_string(we) + ", " + buf : buf;
  }
  return out;
}

CheckOutcome check_product(const BlindedTensor& a, const BlindedTensor& b, bool trans_a,
                           bool trans_b, const BlindedTensor& c, int rounds, Precision precision) {
  return ProductCheck(a, b, trans_a, trans_b, rounds, precision).verify(c);
}

}  // namespace tempo::integrity
