// A product check's vectors drawn before its operands are blinded, so that the kernels blinding
// them take the check's projections of them on the way.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "common/blinded_tensor.h"
#include "master/core/uninitialized_vector.h"
#include "master/crypto/row_projection.h"
#include "master/integrity/projection.h"

namespace tempo::integrity {

/// The master's half of the ProductCheck of C = op(A)·op(B) (A -> [m, k], B -> [k, n] after
/// op; batched: the same for every entry, with every array below laid out by entry, as
/// ProductCheck and RowProjection::entry lay them out), computed while it blinds the operands
/// instead of in passes over them afterwards:
///
///   1. draw():        the check's ±1 vectors v [rounds][n], from the CSPRNG as ProductCheck
///                     draws them (they never leave the TEE, so the worker's result cannot depend
///                     on them, however early they are drawn);
///   2. B's side:      op(B)·v [rounds][k] and |op(B)|·1 [k], by project_b() from B' once blinded,
///                     or by the kernel that writes B''s rows (b_rows(); B not transposed);
///   3. A's side:      op(A)·(op(B)·v) [rounds][m] and |op(A)|·(|op(B)|·1) [m], by the kernel
///                     that writes A''s rows (a_rows(); A not transposed), after B's side;
///   4. the check:     ProductCheck(a, b, ..., replay_a(), replay_b(), signs()) takes these
///                     instead of reading A' and B' again.
///
/// The values are the sums that ProductCheck's own passes compute, in another order (B's side on
/// the ±1 vectors in fp32 lanes on AVX-512, as ProductCheck's own pass; A's side in double), so
/// its tolerance and its soundness bound hold unchanged (docs/integrity.md, sections 1 and 2).
/// Sums that overflowed fp32 are not replayed. A check built with other vectors (a re-sent
/// request's check draws fresh ones) gets nothing from the replays and reads the operands as
/// usual.
class PreparedCheck : public std::enable_shared_from_this<PreparedCheck> {
 public:
  /// Draws the vectors of a check with `rounds` >= 1 rounds of a product of these extents, with
  /// `batch` >= 1 entries (1: an unbatched product).
  static std::shared_ptr<PreparedCheck> draw(int rounds, int64_t m, int64_t k, int64_t n,
                                             int64_t batch = 1);

  /// B's side from the blinded B ([k, n], or [n, k] with trans_b; batched: [batch, ., .]), in one
  /// pass over it.
  void project_b(const BlindedTensor& b, bool trans_b);
  /// B's side taken by a kernel writing B''s k rows of n floats (B not transposed): it projects
  /// them on v.
  crypto::RowProjection b_rows();
  /// A's side taken by a kernel writing A''s m rows of k floats (A not transposed): it projects
  /// them on op(B)·v, weighted by |op(B)|·1. Call once B's side is done.
  crypto::RowProjection a_rows();

  /// The check's vectors [batch][rounds][n], for ProductCheck's `signs`.
  const std::vector<double>& signs() const { return signs_; }
  /// OperandProjections for ProductCheck's project_a / project_b: the values above when the check
  /// asks for exactly these vectors, otherwise false (the check then reads the operand).
  OperandProjection replay_a() const;
  OperandProjection replay_b() const;

 private:
  PreparedCheck(int rounds, int64_t m, int64_t k, int64_t n, int64_t batch);

  int rounds_;
  int64_t m_, k_, n_, batch_;
  std::vector<double> signs_, ones_;  // [batch][rounds][n], [batch][n]
  // Written whole by the projections before anyone reads them: not zero-filled.
  UninitializedVector<double> bv_, b_abs_;    // [batch][rounds][k], [batch][k]
  UninitializedVector<double> abv_, ab_abs_;  // [batch][rounds][m], [batch][m]
  bool b_done_ = false, a_done_ = false;
};

}  // namespace tempo::integrity
