#include "master/integrity/prepared_check.h"

#include <algorithm>
#include <span>
#include <stdexcept>
#include <utility>

#include "master/core/thread_team.h"
#include "master/crypto/csprng.h"
#include "master/integrity/random_signs.h"

namespace tempo::integrity {

namespace {
bool same(const double* x, std::span<const double> expected) {
  return std::equal(expected.begin(), expected.end(), x);
}

/// Answers (out, out_abs) once `done`, for exactly the vectors (x, x_abs) and `rounds`; every
/// reference is into `owner`, which the answer keeps alive. Sums that overflowed a kernel's fp32
/// lanes (rows summing past FLT_MAX) are not answered: the check then projects the operand
/// itself, in double where fp32 overflows. (An infinite |op(B)|·1 would make the tolerance
/// infinite, and the check accept anything.)
OperandProjection replay(std::shared_ptr<const PreparedCheck> owner, const bool& done, int rounds,
                         std::span<const double> x, std::span<const double> x_abs,
                         std::span<const double> out, std::span<const double> out_abs) {
  return [owner = std::move(owner), &done, rounds, x, x_abs, out, out_abs](
             const double* asked, const double* asked_abs, int asked_rounds, double* result,
             double* result_abs) {
    if (!done || asked_rounds != rounds || !same(asked, x) || !same(asked_abs, x_abs) ||
        !projection_finite(out_abs.data(), static_cast<int64_t>(out_abs.size())))
      return false;
    std::copy(out.begin(), out.end(), result);
    std::copy(out_abs.begin(), out_abs.end(), result_abs);
    return true;
  };
}
}  // namespace

std::shared_ptr<PreparedCheck> PreparedCheck::draw(int rounds, int64_t m, int64_t k, int64_t n,
                                                   int64_t batch) {
  return std::shared_ptr<PreparedCheck>(new PreparedCheck(rounds, m, k, n, batch));
}

PreparedCheck::PreparedCheck(int rounds, int64_t m, int64_t k, int64_t n, int64_t batch)
    : rounds_(rounds), m_(m), k_(k), n_(n), batch_(batch) {
  if (rounds < 1 || m < 0 || k < 0 || n < 0 || batch < 1)
    throw std::invalid_argument("PreparedCheck: rounds and batch must be >= 1 and extents >= 0");
  crypto::Csprng rng;
  signs_ = random_signs(rng, batch * rounds * n);
  ones_.assign(static_cast<size_t>(batch * n), 1.0);
  bv_.resize(static_cast<size_t>(batch * rounds * k));
  b_abs_.resize(static_cast<size_t>(batch * k));
  abv_.resize(static_cast<size_t>(batch * rounds * m));
  ab_abs_.resize(static_cast<size_t>(batch * m));
}

void PreparedCheck::project_b(const BlindedTensor& b, bool trans_b) {
  const int64_t rows = trans_b ? n_ : k_, cols = trans_b ? k_ : n_;
  const bool batched = batch_ > 1 || b.rank() == 3;
  const int o = batched ? 1 : 0;
  if (b.rank() != 2 + o || (batched && b.dim(0) != batch_) || b.dim(o) != rows ||
      b.dim(o + 1) != cols)
    throw std::invalid_argument("PreparedCheck::project_b: operand " + b.shape().to_string() +
                                " does not fit the check");
  // Many small entries (attention heads): threads over entries, one projection each.
  const bool over_batch = batch_ > 1 && batch_ * rows * cols >= kParallelElements;
  run_on_team(over_batch, [&](int64_t first, int64_t step) {
    for (int64_t e = first; e < batch_; e += step)
      project_signs(b.data() + e * rows * cols, rows, cols, trans_b,
                    signs_.data() + e * rounds_ * n_, rounds_, bv_.data() + e * rounds_ * k_,
                    b_abs_.data() + e * k_, !over_batch);
  });
  b_done_ = true;
}

crypto::RowProjection PreparedCheck::b_rows() {
  b_done_ = true;
  return {signs_.data(), rounds_, k_, bv_.data(), b_abs_.data(), nullptr};
}

crypto::RowProjection PreparedCheck::a_rows() {
  if (!b_done_) throw std::logic_error("PreparedCheck::a_rows before B's side");
  a_done_ = true;
  return {bv_.data(), rounds_, m_, abv_.data(), ab_abs_.data(), b_abs_.data()};
}

OperandProjection PreparedCheck::replay_a() const {
  return replay(shared_from_this(), a_done_, rounds_, bv_, b_abs_, abv_, ab_abs_);
}

OperandProjection PreparedCheck::replay_b() const {
  return replay(shared_from_this(), b_done_, rounds_, signs_, ones_, bv_, b_abs_);
}

}  // namespace tempo::integrity
