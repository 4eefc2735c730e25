// Freivalds' check of an offloaded (batched) matrix product on its blinded operands.
#pragma once

#include <vector>

#include "common/blinded_tensor.h"
#include "master/core/uninitialized_vector.h"
#include "master/integrity/check_outcome.h"
#include "master/integrity/error_bound.h"
#include "master/integrity/projection.h"

namespace tempo::integrity {

/// Checks C ≈ op(A)·op(B) (rank 2: A, B, C matrices; rank 3: the same for every batch entry) with
/// `rounds` independent vectors v of ±1 entries from the CSPRNG (crypto::Csprng, libsodium):
///
///   z = C·v - op(A)·(op(B)·v)          per row: O(mk + kn + mn) per round
///   pass  <=>  |z_i| <= tau_i = g_k·(|op(A)|·|op(B)|·1)_i + n·abs_k + rho_i
///
/// where g_k = dot_relative_bound(k, precision) bounds an honest worker's rounding, abs_k its
/// underflow, and rho_i the rounding of the check itself: C·v and op(B)·v may be summed in fp32
/// lanes (projection_relative_bound), the rest in double (docs/integrity.md derives all three).
/// An honest result always passes. A result with an entry off the exact product by more than
/// 2·tau_i passes one round with probability at most 1/2, `rounds` rounds with at most 2^-rounds.
///
/// The constructor does the work on A and B (it may run while the worker computes C: v is secret
/// either way); verify() then needs one pass over C. A and B are read only by the constructor.
class ProductCheck {
 public:
  /// rounds >= 1. Throws std::invalid_argument when A and B do not chain (the master's own bug).
  /// `project_a`, `project_b` (optional) stand in for the passes over A and B (see
  /// OperandProjection), for all entries of a batched product in one call: their vectors,
  /// weights and outputs laid out by entry ([batch][rounds][.], [batch][.]); A's is asked only
  /// once B's has answered. `signs` (optional, [batch][rounds][n]): vectors drawn
  /// beforehand from the CSPRNG (PreparedCheck), instead of drawing them here; throws
  /// std::invalid_argument when their count does not fit. `projection_error` (>= 0): how far
  /// the projections given may be from those of the operands themselves, relative to the
  /// absolute terms: projections of an operand computed from what it was blinded from, when the
  /// blinding rounds (patch mode's X' from its input under random-significand scales: every
  /// entry x·fl(r·s) rounds twice). Values within projection_error·|A||B|1 of A·(B·v), absolute
  /// sums no less than (1 - projection_error) times |A||B|1; the tolerance adds that much
  /// (docs/integrity.md, section 2). Ignored when neither projection answered.
  ProductCheck(const BlindedTensor& a, const BlindedTensor& b, bool trans_a, bool trans_b,
               int rounds, Precision precision = Precision::kFp32,
               const OperandProjection& project_a = {}, const OperandProjection& project_b = {},
               std::vector<double> signs = {}, double projection_error = 0.0);

  /// A C of the wrong shape, or with a non-finite entry, fails without a round.
  CheckOutcome verify(const BlindedTensor& c) const;

  /// The same in two halves, for a result whose rows are projected by the kernel that decrypts
  /// it (crypto::RowProjection): check_shape(c) first (a C of the wrong shape must not reach the
  /// kernel), then the kernel fills `cv` [batch][rounds][m] and `c_abs` [batch][m] from C's rows
  /// with the vectors signs() ([batch][rounds][n]), then verify_projected(cv, c_abs).
  CheckOutcome check_shape(const BlindedTensor& c) const;
  CheckOutcome verify_projected(const double* cv, const double* c_abs) const;
  const double* signs() const { return signs_.data(); }
  int rounds() const { return rounds_; }
  int64_t rows() const { return m_; }
  int64_t batch() const { return batch_; }

 private:
  /// Verifies from C itself (c) or from its projections (c_projected, c_projected_abs).
  CheckOutcome verify_entries(const BlindedTensor* c, const double* c_projected,
                              const double* c_projected_abs) const;

  int rounds_;
  Precision precision_;
  double projection_error_ = 0.0;  // of the projections that answered, if any
  int64_t batch_ = 1, m_ = 0, k_ = 0, n_ = 0;
  Shape expected_;
  std::vector<double> signs_;  // [batch][rounds][n]
  // Written whole by the constructor's projections: not zero-filled.
  UninitializedVector<double> abv_;     // [batch][rounds][m]: op(A)·(op(B)·v)
  UninitializedVector<double> ab_abs_;  // [batch][m]: |op(A)|·|op(B)|·1
};

/// ProductCheck(a, b, ...).verify(c).
CheckOutcome check_product(const BlindedTensor& a, const BlindedTensor& b, bool trans_a,
                           bool trans_b, const BlindedTensor& c, int rounds,
                           Precision precision = Precision::kFp32);

}  // namespace tempo::integrity
