#include "master/integrity/prepared_check.h"

#include <algorithm>
#include <stdexcept>
#include <utility>

#include "master/crypto/csprng.h"
#include "master/integrity/random_signs.h"

namespace tempo::integrity {

namespace {
bool same(const double* x, const std::vector<double>& expected) {
  return std::equal(expected.begin(), expected.end(), x);
}

/// Answers (out, out_abs) once `done`, for exactly the vectors (x, x_abs) and `rounds`; every
/// reference is into `owner`, which the answer keeps alive.
OperandProjection replay(std::shared_ptr<const PreparedCheck> owner, const bool& done, int rounds,
                         const std::vector<double>& x, const std::vector<double>& x_abs,
                         const std::vector<double>& out, const std::vector<double>& out_abs) {
  return [owner = std::move(owner), &done, rounds, &x, &x_abs, &out, &out_abs](
             const double* asked, const double* asked_abs, int asked_rounds, double* result,
             double* result_abs) {
    if (!done || asked_rounds != rounds || !same(asked, x) || !same(asked_abs, x_abs)) return false;
    std::copy(out.begin(), out.end(), result);
    std::copy(out_abs.begin(), out_abs.end(), result_abs);
    return true;
  };
}
}  // namespace

std::shared_ptr<PreparedCheck> PreparedCheck::draw(int rounds, int64_t m, int64_t k, int64_t n) {
  return std::shared_ptr<PreparedCheck>(new PreparedCheck(rounds, m, k, n));
}

PreparedCheck::PreparedCheck(int rounds, int64_t m, int64_t k, int64_t n)
    : rounds_(rounds), m_(m), k_(k), n_(n) {
  if (rounds < 1 || m < 0 || k < 0 || n < 0)
    throw std::invalid_argument("PreparedCheck: rounds must be >= 1 and extents >= 0");
  crypto::Csprng rng;
  signs_ = random_signs(rng, rounds * n);
  ones_.assign(static_cast<size_t>(n), 1.0);
  bv_.assign(static_cast<size_t>(rounds * k), 0.0);
  b_abs_.assign(static_cast<size_t>(k), 0.0);
  abv_.assign(static_cast<size_t>(rounds * m), 0.0);
  ab_abs_.assign(static_cast<size_t>(m), 0.0);
}

void PreparedCheck::project_b(const BlindedTensor& b, bool trans_b) {
  const int64_t rows = trans_b ? n_ : k_, cols = trans_b ? k_ : n_;
  if (b.rank() != 2 || b.dim(0) != rows || b.dim(1) != cols)
    throw std::invalid_argument("PreparedCheck::project_b: operand " + b.shape().to_string() +
                                " does not fit the check");
  project(b.data(), rows, cols, trans_b, signs_.data(), ones_.data(), rounds_, bv_.data(),
          b_abs_.data(), true);
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
