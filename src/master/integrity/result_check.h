// The check of one offloaded operation's result, whatever the operation (PROTOCOL.md section 5).
#pragma once

#include <optional>
#include <vector>

#include "common/blinded_tensor.h"
#include "common/worker_protocol.h"
#include "master/integrity/check_outcome.h"
#include "master/integrity/error_bound.h"
#include "master/integrity/product_check.h"

namespace tempo::integrity {

/// What a request asks for, without its tensors: enough to check (and re-send) it.
struct OperationSpec {
  protocol::Op op = protocol::Op::kMatMul;
  bool trans_a = false, trans_b = false;
  protocol::ConvParams conv;
  Shape out_shape;  ///< conv backward: the shape asked for

  static OperationSpec of(const protocol::Request& r) {
    return {r.op, r.trans_a, r.trans_b, r.conv, r.out_shape};
  }
};

/// Checks the result of an operation on the master's own copies of its blinded operands `a`, `b`
/// (the request's a and b, inline or cached). Products and batched products get Freivalds'
/// check (ProductCheck, prepared at construction so it may overlap the worker's computation);
/// convolutions the projection checks of conv_check.h.
class ResultCheck {
 public:
  /// `project_a`, `project_b`, `signs`, `projection_error`: see ProductCheck (products only).
  ResultCheck(const OperationSpec& spec, const BlindedTensor& a, const BlindedTensor& b, int rounds,
              Precision precision, const OperandProjection& project_a = {},
              const OperandProjection& project_b = {}, std::vector<double> signs = {},
              double projection_error = 0.0);
  CheckOutcome verify(const BlindedTensor& result) const;
  /// The product check, for verifying from projections a decryption kernel took (null for
  /// convolutions).
  const ProductCheck* product() const { return product_ ? &*product_ : nullptr; }

 private:
  OperationSpec spec_;
  const BlindedTensor* a_;
  const BlindedTensor* b_;
  int rounds_;
  Precision precision_;
  std::optional<ProductCheck> product_;
};

}  // namespace tempo::integrity
